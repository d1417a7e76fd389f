{{/*
Several clusters from one release (values "clusters"). Each entry is one
more kubernetes block: its kubeconfig comes from a Secret mounted read-only
at /etc/certwatch-clusters/<name>/kubeconfig, its settings from the entry's
kubernetes, or else from config.kubernetes. config.kubernetes stays the
block of the cluster the release runs in (RBAC and the API token are for it
alone) and then needs a cluster name, or null to watch only the listed
clusters.
*/}}

{{/* The folder holding the kubeconfig of entry .name. */}}
{{- define "certwatch.clusterDir" -}}
/etc/certwatch-clusters/{{ .name }}
{{- end }}

{{/*
certwatch.addClusters turns cfg.kubernetes (a copy of config) into the list
of blocks: the release's own cluster first, then one per entry.
*/}}
{{- define "certwatch.addClusters" -}}
{{- $root := .root }}
{{- $cfg := .cfg }}
{{- with $root.Values.clusters }}
{{- $local := $cfg.kubernetes }}
{{- if kindIs "slice" $local }}
{{- fail "clusters: config.kubernetes must be the block of the release's own cluster (a mapping) or null when clusters lists the others" }}
{{- end }}
{{- $blocks := list }}
{{- $defaults := dict }}
{{- if kindIs "map" $local }}
{{- if not $local.cluster }}
{{- fail "clusters: config.kubernetes watches the cluster the release runs in: name it with config.kubernetes.cluster (or set config.kubernetes to null)" }}
{{- end }}
{{- $blocks = append $blocks $local }}
{{- $defaults = omit (deepCopy ($root.Values.config.kubernetes | default dict)) "cluster" "kubeconfig" "context" }}
{{- end }}
{{- range $i, $c := . }}
{{- if not $c.name }}
{{- fail (printf "clusters[%d]: name is required (it is the cluster label of its series)" $i) }}
{{- end }}
{{- if not ($c.kubeconfigSecret | default dict).name }}
{{- fail (printf "clusters[%d] (%s): kubeconfigSecret.name is required" $i $c.name) }}
{{- end }}
{{- $block := deepCopy ($c.kubernetes | default $defaults) }}
{{- if not $block }}
{{- fail (printf "clusters[%d] (%s): set its kubernetes settings (config.kubernetes is null, so there is nothing to inherit)" $i $c.name) }}
{{- end }}
{{- $_ := set $block "cluster" $c.name }}
{{- $_ = set $block "kubeconfig" (printf "%s/kubeconfig" (include "certwatch.clusterDir" $c)) }}
{{- if $c.context }}{{ $_ = set $block "context" $c.context }}{{ end }}
{{- $blocks = append $blocks $block }}
{{- end }}
{{- $_ := set $cfg "kubernetes" $blocks }}
{{- end }}
{{- end }}

{{/* The volume mounts of the clusters' kubeconfig Secrets. */}}
{{- define "certwatch.clusterVolumeMounts" -}}
{{- range $i, $c := .Values.clusters }}
- name: kubeconfig-{{ $i }}
  mountPath: {{ include "certwatch.clusterDir" $c }}
  readOnly: true
{{- end }}
{{- end }}

{{/* The volumes of the clusters' kubeconfig Secrets. */}}
{{- define "certwatch.clusterVolumes" -}}
{{- range $i, $c := .Values.clusters }}
- name: kubeconfig-{{ $i }}
  secret:
    secretName: {{ $c.kubeconfigSecret.name }}
    items:
      - key: {{ $c.kubeconfigSecret.key | default "kubeconfig" }}
        path: kubeconfig
{{- end }}
{{- end }}
