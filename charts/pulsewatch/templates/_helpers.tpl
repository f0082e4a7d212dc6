{{/*
The chart name, overridable with nameOverride.
*/}}
{{- define "pulsewatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The fully qualified app name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "pulsewatch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pulsewatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object. The component label keeps the API's selector apart from the dev Redis and PostgreSQL pods.
*/}}
{{- define "pulsewatch.labels" -}}
helm.sh/chart: {{ include "pulsewatch.chart" . }}
app.kubernetes.io/name: {{ include "pulsewatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pulsewatch
{{- end }}

{{/*
Selector labels of one component: call with (dict "context" $ "component" "api").
*/}}
{{- define "pulsewatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pulsewatch.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pulsewatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pulsewatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
registry/repository:tag, or @digest when a digest is given. Call with an image dict and the default tag.
*/}}
{{- define "pulsewatch.imageRef" -}}
{{- $repo := ternary (printf "%s/%s" .image.registry .image.repository) .image.repository (ne (.image.registry | default "") "") }}
{{- if .image.digest }}
{{- printf "%s@%s" $repo .image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.image.tag | default .defaultTag | toString) }}
{{- end }}
{{- end }}

{{- define "pulsewatch.image" -}}
{{- include "pulsewatch.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion) }}
{{- end }}

{{/*
The Secret holding JWT_SECRET, DATABASE_URL and REDIS_URL: the operator's, or the one this chart makes.
*/}}
{{- define "pulsewatch.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "pulsewatch.fullname" .) }}
{{- end }}

{{- define "pulsewatch.postgresqlHost" -}}
{{- printf "%s-postgresql" (include "pulsewatch.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A label that admits a pod through the NetworkPolicy when networkPolicy.ingressController or .ingressFrom restricts who may call the API.
*/}}
{{- define "pulsewatch.clientLabel" -}}
{{ include "pulsewatch.fullname" . | trunc 56 | trimSuffix "-" }}-client: "true"
{{- end }}

{{/*
Container securityContext for the dev Redis and PostgreSQL: the API's, with their image's own user.
*/}}
{{- define "pulsewatch.dependencySecurityContext" -}}
runAsNonRoot: true
runAsUser: 999
runAsGroup: 999
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
A ConfigMap value: numbers as integers (Helm reads YAML numbers as floats and would print 1e+06).
*/}}
{{- define "pulsewatch.envValue" -}}
{{- if kindIs "float64" . }}{{ int64 . | toString | quote }}{{ else }}{{ toString . | quote }}{{ end }}
{{- end }}

{{/*
A NetworkPolicy peer from networkPolicy.<name>: its namespaceSelector and podSelector, whichever are set
(an empty selector matches everything; a selector set to null is left out). Call with (dict "name" … "peer" …).
*/}}
{{- define "pulsewatch.networkPolicyPeer" -}}
{{- $peer := pick .peer "namespaceSelector" "podSelector" }}
{{- if not $peer }}
{{- fail (printf "networkPolicy.%s needs a namespaceSelector or a podSelector" .name) }}
{{- end }}
{{- toYaml $peer }}
{{- end }}
