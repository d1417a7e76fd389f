{{/* Chart name, or nameOverride. */}}
{{- define "certwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the objects: fullnameOverride, or RELEASE-NAME, or RELEASE when it
already contains the name. Cut to 58 characters so suffixes such as "-node"
still fit the 63 a label value allows.
*/}}
{{- define "certwatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 58 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 58 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 58 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "certwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "certwatch.labels" -}}
helm.sh/chart: {{ include "certwatch.chart" . }}
{{ include "certwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: certwatch
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels shared by the selectors of every workload (and the NetworkPolicy). */}}
{{- define "certwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "certwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the Deployment runs as. */}}
{{- define "certwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "certwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag (the chart's appVersion by default), or repository@digest. */}}
{{- define "certwatch.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Namespace of an optional object: its own setting, or the release's. */}}
{{- define "certwatch.namespaceOr" -}}
{{- default .root.Release.Namespace .namespace }}
{{- end }}

{{/* The configuration file of the Deployment, as YAML. */}}
{{- define "certwatch.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $_ := include "certwatch.addMesh" (dict "root" . "cfg" $cfg) }}
{{- $_ = include "certwatch.addClusters" (dict "root" . "cfg" $cfg) }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The configuration file of the DaemonSet, as YAML. With spiffe.enabled it
watches the mounted agent socket, unless daemonset.config has a spiffe
section (null included) of its own.
*/}}
{{- define "certwatch.nodeConfig" -}}
{{- $cfg := deepCopy (.Values.daemonset.config | default dict) }}
{{- if and .Values.spiffe.enabled (not (hasKey $cfg "spiffe")) }}
{{- $_ := set $cfg "spiffe" (dict "workload_api" (list (dict "address" (include "certwatch.spiffeSocket" .)))) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* The SPIRE agent's Workload API socket in the node pods, as an address. */}}
{{- define "certwatch.spiffeSocket" -}}
{{- printf "unix://%s/%s" (.Values.spiffe.mountPath | trimSuffix "/") .Values.spiffe.socket.fileName }}
{{- end }}

{{/*
Which Kubernetes kinds config.kubernetes enables, as a dict of booleans
(secrets, configmaps, webhooks, apiservices, crds) and namespace lists
(secretNamespaces, configmapNamespaces), and passwordNamespace: the namespace
of secrets.password_secret when it names one. Secrets and ConfigMaps are on
when their key is a map, the empty map included; null or absent is off.
*/}}
{{- define "certwatch.kubeKinds" -}}
{{- $k := .Values.config.kubernetes | default dict }}
{{- $secrets := and (hasKey $k "secrets") (kindIs "map" $k.secrets) }}
{{- $configmaps := and (hasKey $k "configmaps") (kindIs "map" $k.configmaps) }}
{{- $out := dict "secrets" $secrets "configmaps" $configmaps "webhooks" (eq true $k.webhooks) "apiservices" (eq true $k.apiservices) "crds" (eq true $k.crds) }}
{{- $_ := set $out "secretNamespaces" (ternary ($k.secrets | default dict).namespaces list $secrets | default list) }}
{{- $_ = set $out "passwordNamespace" (ternary (($k.secrets | default dict).password_secret | default dict).namespace "" $secrets | default "") }}
{{- $_ = set $out "configmapNamespaces" (ternary ($k.configmaps | default dict).namespaces list $configmaps | default list) }}
{{- /* csrs, or cert_manager enabled outright, watch something too (auto alone does not). */}}
{{- $_ = set $out "any" (or $secrets $configmaps (eq true $k.webhooks) (eq true $k.apiservices) (eq true $k.crds) (eq true $k.csrs) (eq "true" (toString ($k.cert_manager | default dict).enabled))) }}
{{- toJson $out }}
{{- end }}

{{/* The pod and container security contexts of the node pods. */}}
{{- define "certwatch.nodePodSecurityContext" -}}
{{- toYaml (.Values.daemonset.podSecurityContext | default .Values.podSecurityContext) }}
{{- end }}
{{- define "certwatch.nodeSecurityContext" -}}
{{- toYaml (.Values.daemonset.securityContext | default .Values.securityContext) }}
{{- end }}
