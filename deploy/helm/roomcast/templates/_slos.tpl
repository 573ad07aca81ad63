{{/*
The SLOs the PrometheusRule alerts on, as a list rendered to YAML. Each has
an error and a total rate over WINDOW (replaced per window), an objective in
percent, and the alert that burns its budget (its runbook is the anchor of
the same name in docs/operations.md). Metric names are HTTP.md's.
*/}}
{{- define "roomcast.slos" -}}
{{- $s := .Values.monitoring.slo }}
{{- $sel := printf "namespace=%q, job=%q" .Release.Namespace (include "roomcast.fullname" .) }}
{{- $ingress := default (printf "ingress=%q" (include "roomcast.fullname" .)) $s.ingressSelector }}
- slo: connect
  alert: RoomcastConnectErrorBudgetBurn
  objective: {{ $s.connectSuccess }}
  what: WebSocket upgrades through the ingress answered 5xx
  errors: sum(rate(nginx_ingress_controller_requests{ {{- $ingress }}, status=~"5.."}[WINDOW]))
  total: sum(rate(nginx_ingress_controller_requests{ {{- $ingress }}}[WINDOW]))
- slo: publish-latency
  alert: RoomcastPublishLatencyBudgetBurn
  objective: {{ $s.publishLatency }}
  what: publishes acknowledged later than {{ $s.publishLatencyThresholdSeconds }}s
  errors: (sum(rate(roomcast_publish_duration_seconds_count{ {{- $sel }}}[WINDOW])) - sum(rate(roomcast_publish_duration_seconds_bucket{ {{- $sel }}, le="{{ $s.publishLatencyThresholdSeconds }}"}[WINDOW])))
  total: sum(rate(roomcast_publish_duration_seconds_count{ {{- $sel }}}[WINDOW]))
- slo: resume
  alert: RoomcastResumeErrorBudgetBurn
  objective: {{ $s.resumeSuccess }}
  what: session resumes that failed
  errors: sum(rate(roomcast_resumes_total{ {{- $sel }}, result=~"{{ $s.resumeFailureResults }}"}[WINDOW]))
  total: sum(rate(roomcast_resumes_total{ {{- $sel }}}[WINDOW]))
- slo: store
  alert: RoomcastStoreUnavailable
  objective: {{ $s.storeAvailability }}
  what: requests refused as unavailable (store down)
  errors: sum(rate(roomcast_errors_total{ {{- $sel }}, code="unavailable"}[WINDOW]))
  total: ((sum(rate(roomcast_messages_published_total{ {{- $sel }}}[WINDOW])) or vector(0)) + sum(rate(roomcast_errors_total{ {{- $sel }}, code="unavailable"}[WINDOW])))
- slo: slow-consumer
  alert: RoomcastSlowConsumerSurge
  objective: {{ $s.slowConsumerBudget }}
  what: disconnects that were slow-consumer closes (4000)
  errors: sum(rate(roomcast_disconnects_total{ {{- $sel }}, code="4000"}[WINDOW]))
  total: sum(rate(roomcast_disconnects_total{ {{- $sel }}}[WINDOW]))
{{- end }}
