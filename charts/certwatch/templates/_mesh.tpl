{{/*
The service-mesh presets in effect, as JSON: {istio: {enabled, namespace},
linkerd: {...}, any}. A preset is on when mesh.<mesh>.enabled is true or
config.kubernetes.mesh.<mesh>.enabled is; the namespace is the
configuration's when it names one, else mesh.<mesh>.namespace.
*/}}
{{- define "certwatch.mesh" -}}
{{- $kube := .Values.config.kubernetes }}
{{- $fromConfig := dict }}
{{- if kindIs "map" $kube }}{{ $fromConfig = $kube.mesh | default dict }}{{ end }}
{{- $out := dict "any" false }}
{{- range $name, $default := dict "istio" "istio-system" "linkerd" "linkerd" }}
{{- $values := get ($.Values.mesh | default dict) $name | default dict }}
{{- $cfg := get $fromConfig $name | default dict }}
{{- $enabled := or (eq true $values.enabled) (eq true $cfg.enabled) }}
{{- $ns := $cfg.namespace | default $values.namespace | default $default }}
{{- $_ := set $out $name (dict "enabled" $enabled "namespace" $ns) }}
{{- if $enabled }}{{ $_ := set $out "any" true }}{{ end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
certwatch.addMesh writes the presets that mesh.* turns on into cfg (a copy
of config), under kubernetes.mesh: kubernetes is made when it is null or
absent; a list of cluster blocks must name its presets itself.
*/}}
{{- define "certwatch.addMesh" -}}
{{- $root := .root }}
{{- $cfg := .cfg }}
{{- $values := $root.Values.mesh | default dict }}
{{- $on := list }}
{{- range $name := list "istio" "linkerd" }}
{{- if eq true (get $values $name | default dict).enabled }}{{ $on = append $on $name }}{{ end }}
{{- end }}
{{- if $on }}
{{- if kindIs "slice" $cfg.kubernetes }}
{{- fail "mesh.*.enabled: config.kubernetes is a list of cluster blocks; set kubernetes.mesh in the block of each cluster instead" }}
{{- end }}
{{- if not (kindIs "map" $cfg.kubernetes) }}{{ $_ := set $cfg "kubernetes" dict }}{{ end }}
{{- $mesh := $cfg.kubernetes.mesh | default dict }}
{{- range $name := $on }}
{{- $preset := get $values $name }}
{{- $ns := (get $mesh $name | default dict).namespace | default $preset.namespace }}
{{- $_ := set $mesh $name (dict "enabled" true "namespace" $ns) }}
{{- end }}
{{- $_ := set $cfg.kubernetes "mesh" $mesh }}
{{- end }}
{{- end }}
