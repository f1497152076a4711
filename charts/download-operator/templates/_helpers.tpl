{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "download-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every resource name. Truncated to leave room for the longest suffix
("-metrics-reader") within 63 characters.
*/}}
{{- define "download-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "download-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "download-operator.labels" -}}
helm.sh/chart: {{ include "download-operator.chart" . }}
{{ include "download-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels shared by every component.
*/}}
{{- define "download-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "download-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component: call with (dict "ctx" $ "component" "controller").
*/}}
{{- define "download-operator.componentLabels" -}}
{{ include "download-operator.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "download-operator.componentSelectorLabels" -}}
{{ include "download-operator.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Names of the components' objects.
*/}}
{{- define "download-operator.controllerName" -}}
{{ include "download-operator.fullname" . }}-controller
{{- end }}

{{- define "download-operator.facadeName" -}}
{{ include "download-operator.fullname" . }}-facade
{{- end }}

{{- define "download-operator.workerName" -}}
{{ include "download-operator.fullname" . }}-worker
{{- end }}

{{/*
The storage Secret's name: the existing one, or the one the chart creates.
*/}}
{{- define "download-operator.storageSecretName" -}}
{{- if .Values.storage.existingSecret }}
{{- .Values.storage.existingSecret }}
{{- else }}
{{- include "download-operator.fullname" . }}-storage
{{- end }}
{{- end }}

{{/*
Served namespaces: the release namespace first, then .Values.namespaces, without duplicates,
as a comma-separated list (split it with splitList "," to range over it).
*/}}
{{- define "download-operator.servedNamespaces" -}}
{{- $namespaces := list .Release.Namespace }}
{{- range .Values.namespaces }}
{{- if not (kindIs "string" .) }}
{{- fail (printf "namespaces: every entry must be a namespace name, got %v" .) }}
{{- end }}
{{- $namespaces = append $namespaces . }}
{{- end }}
{{- join "," (uniq $namespaces) }}
{{- end }}

{{/*
Full image reference: repository:tag (tag defaults to appVersion), or repository@digest.
*/}}
{{- define "download-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{- define "download-operator.workerImage" -}}
{{- .Values.controller.worker.image | default (include "download-operator.image" .) }}
{{- end }}

{{/*
URL of the controller's file-check endpoint, as the facade calls it.
*/}}
{{- define "download-operator.controllerURL" -}}
{{- if .Values.facade.controllerURL }}
{{- .Values.facade.controllerURL }}
{{- else }}
{{- printf "http://%s.%s.svc:8082" (include "download-operator.controllerName" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/*
Required values, checked once and included by the templates that need them, so a missing value
fails every render with a message naming it.
*/}}
{{- define "download-operator.validate" -}}
{{- $_ := required "storage.endpoint is required: host:port of object storage as seen from inside the cluster, e.g. --set storage.endpoint=minio.minio.svc:9000" .Values.storage.endpoint }}
{{- $_ = required "storage.publicEndpoint is required: the URL browsers use to reach object storage, e.g. --set storage.publicEndpoint=https://files.example.com" .Values.storage.publicEndpoint }}
{{- if not .Values.storage.existingSecret }}
{{- $_ = required "storage.accessKey is required when storage.existingSecret is empty (or set storage.existingSecret to a Secret with keys accessKey and secretKey)" .Values.storage.accessKey }}
{{- $_ = required "storage.secretKey is required when storage.existingSecret is empty (or set storage.existingSecret to a Secret with keys accessKey and secretKey)" .Values.storage.secretKey }}
{{- end }}
{{- if contains "://" .Values.storage.endpoint }}
{{- fail (printf "storage.endpoint must be host:port without a scheme, got %q (use storage.secure for TLS)" .Values.storage.endpoint) }}
{{- end }}
{{- if not (regexMatch "^https?://" .Values.storage.publicEndpoint) }}
{{- fail (printf "storage.publicEndpoint must start with http:// or https://, got %q" .Values.storage.publicEndpoint) }}
{{- end }}
{{- if and (gt (int .Values.controller.replicas) 1) (not .Values.controller.leaderElect) }}
{{- fail "controller.replicas > 1 needs controller.leaderElect=true, or the replicas reconcile the same Downloads at once" }}
{{- end }}
{{- include "download-operator.validateEvents" . }}
{{- end }}

{{/*
The event sinks, checked as the controller checks its sinks file, so that a mistake fails the
render instead of the controller's start.
*/}}
{{- define "download-operator.validateEvents" -}}
{{- $served := splitList "," (include "download-operator.servedNamespaces" .) }}
{{- $names := list }}
{{- range $i, $sink := .Values.events.sinks }}
{{- if not (kindIs "map" $sink) }}
{{- fail (printf "events.sinks[%d] must be a map with name, namespaces, url and secretName, got %v" $i $sink) }}
{{- end }}
{{- $name := toString $sink.name }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" $name) }}
{{- fail (printf "events.sinks[%d].name must be a DNS label (lower-case letters, digits and '-', at most 63), got %q" $i $name) }}
{{- end }}
{{- if has $name $names }}
{{- fail (printf "events.sinks[%d].name %q is used by an earlier sink" $i $name) }}
{{- end }}
{{- $names = append $names $name }}
{{- $url := toString $sink.url }}
{{- if not (regexMatch "^https?://[^/?#@]+([/?].*)?$" $url) }}
{{- fail (printf "events.sinks[%d].url must be an http:// or https:// URL without credentials, got %q" $i (regexReplaceAll "//[^/]*@" $url "//***@")) }}
{{- end }}
{{- if not $sink.secretName }}
{{- fail (printf "events.sinks[%d].secretName is required: a Secret in the release namespace holding the sink's HMAC key" $i) }}
{{- end }}
{{- if not (and (kindIs "slice" $sink.namespaces) $sink.namespaces) }}
{{- fail (printf "events.sinks[%d].namespaces must list served namespaces, or \"*\" for all of them" $i) }}
{{- end }}
{{- range $sink.namespaces }}
{{- if and (ne (toString .) "*") (not (has (toString .) $served)) }}
{{- fail (printf "events.sinks[%d].namespaces: %q is not served (served: %s); add it to namespaces" $i (toString .) (join ", " $served)) }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.events.publicBaseUrl }}
{{- if not (regexMatch "^https?://[^/]" .) }}
{{- fail (printf "events.publicBaseUrl must start with http:// or https://, got %q" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Where the controller finds the event sinks file, and each sink's key.
*/}}
{{- define "download-operator.eventSinksDir" -}}
/etc/download-operator/events
{{- end }}

{{- define "download-operator.eventKeysDir" -}}
/etc/download-operator/event-keys
{{- end }}

{{/*
The event sinks file (internal/events), as the controller reads it: each sink's key file is
where the controller Deployment mounts that sink's Secret.
*/}}
{{- define "download-operator.eventSinksFile" -}}
{{- $sinks := list }}
{{- range .Values.events.sinks }}
{{- $keyFile := printf "%s/%s/%s" (include "download-operator.eventKeysDir" $) .name (.secretKey | default "hmacKey") }}
{{- $sinks = append $sinks (dict "name" .name "namespaces" .namespaces "url" .url "hmacKeyFile" $keyFile) }}
{{- end }}
{{- toYaml (dict "sinks" $sinks) }}
{{- end }}

{{/*
Restricted Pod Security Standard: pod-level and container-level security contexts.
*/}}
{{- define "download-operator.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "download-operator.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/*
The OpenTelemetry settings of the facade and the controller, as container env entries.
*/}}
{{- define "download-operator.tracingEnv" -}}
{{- with .Values.tracing }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ .protocol | quote }}
{{- end }}
{{- with .env }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The --namespace-queue-names flag: namespace=queue pairs, in the order of the namespaces' names.
*/}}
{{- define "download-operator.namespaceQueueNames" -}}
{{- $pairs := list -}}
{{- range $namespace, $queue := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $namespace $queue) -}}
{{- end -}}
--namespace-queue-names={{ join "," $pairs }}
{{- end -}}
