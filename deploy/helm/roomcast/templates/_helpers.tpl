{{/* Names and labels shared by every manifest. */}}
{{- define "roomcast.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "roomcast.fullname" -}}
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

{{- define "roomcast.selectorLabels" -}}
app.kubernetes.io/name: {{ include "roomcast.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "roomcast.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "roomcast.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "roomcast.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "roomcast.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "roomcast.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "roomcast.secretName" -}}
{{- default (printf "%s-urls" (include "roomcast.fullname" .)) .Values.config.cluster.existingSecret }}
{{- end }}

{{/* HTTP.md: the grace period is at least DRAIN_PERIOD + 10 s (plus the preStop sleep). */}}
{{- define "roomcast.terminationGracePeriodSeconds" -}}
{{- $min := add .Values.preStopSleepSeconds .Values.config.drainPeriodSeconds 10 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- $min }}
{{- else if lt (int .Values.terminationGracePeriodSeconds) (int $min) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + config.drainPeriodSeconds + 10 = %v" .Values.terminationGracePeriodSeconds $min) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* The environment of the server and of the migration Job. */}}
{{- define "roomcast.storeEnv" -}}
{{- if .Values.config.cluster.enabled }}
- name: STORE
  value: {{ .Values.config.cluster.store | quote }}
- name: POSTGRES_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "roomcast.secretName" . }}
      key: {{ .Values.config.cluster.secretKeys.postgresUrl }}
- name: POSTGRES_POOL_SIZE
  value: {{ .Values.config.cluster.postgresPoolSize | quote }}
{{- else }}
- name: STORE
  value: sqlite
- name: SQLITE_PATH
  value: /data/roomcast.db
{{- end }}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
{{- end }}

{{- define "roomcast.env" -}}
{{ include "roomcast.storeEnv" . }}
- name: PORT
  value: "8080"
- name: WS_PATH
  value: {{ .Values.config.wsPath | quote }}
- name: DRAIN_PERIOD
  value: {{ printf "%ds" (int .Values.config.drainPeriodSeconds) | quote }}
{{- if .Values.config.allowedOrigins }}
- name: ALLOWED_ORIGINS
  value: {{ .Values.config.allowedOrigins | quote }}
{{- end }}
- name: METRICS_PATH
  value: {{ .Values.metrics.path | quote }}
{{- if .Values.metrics.port }}
- name: METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- end }}
{{- if .Values.config.cluster.enabled }}
- name: BROKER
  value: {{ .Values.config.cluster.broker | quote }}
{{- if eq .Values.config.cluster.broker "nats" }}
- name: NATS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "roomcast.secretName" . }}
      key: {{ .Values.config.cluster.secretKeys.natsUrl }}
{{- else }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "roomcast.secretName" . }}
      key: {{ .Values.config.cluster.secretKeys.redisUrl }}
{{- end }}
{{- else }}
- name: BROKER
  value: memory
{{- end }}
{{- range $k, $v := .Values.config.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end }}
