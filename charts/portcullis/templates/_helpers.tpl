{{/*
Chart name (or nameOverride), at most 63 characters.
*/}}
{{- define "portcullis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name of the release's objects: fullnameOverride, else the release name followed by the
chart name unless the release name already contains it; at most 63 characters.
*/}}
{{- define "portcullis.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "portcullis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels that select the Portcullis pods. They never change after install.
*/}}
{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "portcullis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels on every object of the release.
*/}}
{{- define "portcullis.labels" -}}
helm.sh/chart: {{ include "portcullis.chart" . }}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
Name of the ServiceAccount the pods run as.
*/}}
{{- define "portcullis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "portcullis.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "portcullis.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
Affinity of the pods: .Values.affinity, plus the podAntiAffinity that podAntiAffinity.mode
asks for unless .Values.affinity brings its own. Empty when there is nothing to say.
*/}}
{{- define "portcullis.affinity" -}}
{{- $affinity := deepCopy (.Values.affinity | default dict) -}}
{{- $mode := .Values.podAntiAffinity.mode -}}
{{- if and $mode (not (hasKey $affinity "podAntiAffinity")) -}}
{{- $term := dict "topologyKey" .Values.podAntiAffinity.topologyKey "labelSelector" (dict "matchLabels" (include "portcullis.selectorLabels" . | fromYaml)) -}}
{{- if eq $mode "hard" -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) -}}
{{- else -}}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) -}}
{{- end -}}
{{- end -}}
{{- if $affinity -}}
{{- toYaml $affinity -}}
{{- end -}}
{{- end -}}

{{/*
True (non-empty) when more than one replica can run, i.e. a PodDisruptionBudget makes sense.
*/}}
{{- define "portcullis.multiReplica" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/*
RBAC rules for the namespaces Portcullis watches (a ClusterRole, or a Role in watchNamespace).
*/}}
{{- define "portcullis.watchRules" -}}
# The three Portcullis kinds: every replica watches them and builds its own snapshot.
- apiGroups: ["auth.portcullis.dev"]
  resources: ["credentials", "customauthorizers", "apibindings"]
  verbs: ["get", "list", "watch"]
# Conditions, written by the elected replica only.
- apiGroups: ["auth.portcullis.dev"]
  resources: ["credentials/status", "customauthorizers/status", "apibindings/status"]
  verbs: ["get", "update", "patch"]
# Key material; only Secrets labelled auth.portcullis.dev/credential: "true" are cached, but
# RBAC cannot select by label.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
{{- end -}}
