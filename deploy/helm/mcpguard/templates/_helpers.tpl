{{/* The chart's name, the release's full name, and the labels every object carries. */}}
{{- define "mcpguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mcpguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "mcpguard.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mcpguard.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mcpguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mcpguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mcpguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mcpguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "mcpguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mcpguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mcpguard.redisAddr" -}}
{{- if .Values.approvals.store.redis.addr -}}
{{- .Values.approvals.store.redis.addr -}}
{{- else if .Values.redis.enabled -}}
{{- printf "%s-redis:6379" (include "mcpguard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
mcpguard.config is the service config: .Values.config with what Kubernetes decides filled in.
Mount paths here and in deployment.yaml must agree; the tests mount the rendered volumes and
run `mcpguard config validate` on the result.
*/}}
{{- define "mcpguard.config" -}}
{{- $v := .Values -}}
{{- $c := deepCopy (default dict $v.config) -}}
{{- range $k := list "data_dir" -}}
{{- if hasKey $c $k }}{{ fail (printf "config.%s is set by the chart" $k) }}{{ end -}}
{{- end -}}
{{- $_ := set $c "data_dir" "/var/lib/mcpguard" -}}
{{- $grpc := default dict (get $c "grpc") -}}
{{- if hasKey $grpc "listen" }}{{ fail "config.grpc.listen is set by the chart (ports.grpc)" }}{{ end -}}
{{- $_ := set $grpc "listen" (printf "0.0.0.0:%d" (int $v.ports.grpc)) -}}
{{- if $v.tls.grpc.enabled -}}
{{- if not $v.tls.grpc.secretName }}{{ fail "tls.grpc.secretName is required when tls.grpc.enabled" }}{{ end -}}
{{- $t := dict "cert_file" "/etc/mcpguard/tls/grpc/tls.crt" "key_file" "/etc/mcpguard/tls/grpc/tls.key" "min_version" $v.tls.grpc.minVersion -}}
{{- if $v.tls.grpc.mtls -}}
{{- $_ := set $t "client_ca_file" "/etc/mcpguard/tls/grpc-client-ca/ca.crt" -}}
{{- end -}}
{{- $_ := set $grpc "tls" $t -}}
{{- else if $v.tls.grpc.mtls -}}
{{- fail "tls.grpc.mtls needs tls.grpc.enabled" -}}
{{- end -}}
{{- $_ := set $c "grpc" $grpc -}}
{{- $admin := default dict (get $c "admin") -}}
{{- if hasKey $admin "listen" }}{{ fail "config.admin.listen is set by the chart (ports.admin)" }}{{ end -}}
{{- $_ := set $admin "listen" (printf "0.0.0.0:%d" (int $v.ports.admin)) -}}
{{- if $v.tls.admin.enabled -}}
{{- if not $v.tls.admin.secretName }}{{ fail "tls.admin.secretName is required when tls.admin.enabled" }}{{ end -}}
{{- $_ := set $admin "tls" (dict "cert_file" "/etc/mcpguard/tls/admin/tls.crt" "key_file" "/etc/mcpguard/tls/admin/tls.key") -}}
{{- end -}}
{{- $_ := set $c "admin" $admin -}}
{{- $pol := default dict (get $c "policy") -}}
{{- if hasKey $pol "file" }}{{ fail "config.policy.file is set by the chart (policy)" }}{{ end -}}
{{- if $v.policy -}}
{{- $_ := set $pol "file" "/etc/mcpguard/policy/policy.yaml" -}}
{{- end -}}
{{- $_ := set $c "policy" $pol -}}
{{- $rec := default dict (get $c "recordings") -}}
{{- if hasKey $rec "signing_key_file" }}{{ fail "config.recordings.signing_key_file is set by the chart (secrets.recordingsSigningKey)" }}{{ end -}}
{{- if ne (toString (get $rec "enabled")) "false" -}}
{{- if not $v.secrets.recordingsSigningKey }}{{ fail "secrets.recordingsSigningKey is required while recordings are enabled (a key created in the pod dies with it)" }}{{ end -}}
{{- $_ := set $rec "signing_key_file" "/etc/mcpguard/keys/recordings/signing-key.pem" -}}
{{- end -}}
{{- $_ := set $c "recordings" $rec -}}
{{- $mask := default dict (get $c "masking") -}}
{{- if hasKey $mask "hash_key_file" }}{{ fail "config.masking.hash_key_file is set by the chart (secrets.maskingHashKey)" }}{{ end -}}
{{- if $v.secrets.maskingHashKey -}}
{{- $_ := set $mask "hash_key_file" "/etc/mcpguard/keys/masking/hash-key" -}}
{{- end -}}
{{- $_ := set $c "masking" $mask -}}
{{- $ap := default dict (get $c "approvals") -}}
{{- if hasKey $ap "store" }}{{ fail "config.approvals.store is set by the chart (approvals.store)" }}{{ end -}}
{{- $multi := or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled -}}
{{- if eq $v.approvals.store.kind "redis" -}}
{{- $addr := include "mcpguard.redisAddr" . -}}
{{- if not $addr }}{{ fail "approvals.store.kind redis needs approvals.store.redis.addr or redis.enabled" }}{{ end -}}
{{- $r := dict "addr" $addr "tls" $v.approvals.store.redis.tls -}}
{{- if $v.approvals.store.redis.passwordSecret -}}
{{- $_ := set $r "password_file" "/etc/mcpguard/keys/redis/password" -}}
{{- end -}}
{{- $_ := set $ap "store" (dict "kind" "redis" "redis" $r) -}}
{{- else if eq $v.approvals.store.kind "file" -}}
{{- if $multi }}{{ fail "more than one replica (replicaCount > 1 or autoscaling) needs approvals.store.kind redis: the file store is per pod" }}{{ end -}}
{{- $_ := set $ap "store" (dict "kind" "file") -}}
{{- else -}}
{{- fail (printf "approvals.store.kind: %q is not file or redis" $v.approvals.store.kind) -}}
{{- end -}}
{{- $_ := set $c "approvals" $ap -}}
{{- toYaml $c -}}
{{- end -}}

