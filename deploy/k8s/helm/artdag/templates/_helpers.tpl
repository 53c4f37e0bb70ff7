{{/* Names, labels and the one Deployment template every service is rendered from. */}}

{{- define "artdag.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "artdag.fullname" -}}
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

{{- define "artdag.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "artdag.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: artdag
{{- end -}}

{{/* Selector labels of one service's pods: (dict "root" $ "name" "executor"). */}}
{{- define "artdag.selectorLabels" -}}
app.kubernetes.io/name: {{ include "artdag.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "artdag.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "artdag.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "artdag.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "artdag.secretName" -}}
{{- default (printf "%s-secret" (include "artdag.fullname" .)) .Values.existingSecret -}}
{{- end -}}

{{/* The NATS URL: given, or the bundled chart's client service. */}}
{{- define "artdag.natsUrl" -}}
{{- if .Values.natsUrl -}}
{{- .Values.natsUrl -}}
{{- else if .Values.nats.enabled -}}
{{- printf "nats://%s-nats.%s.svc:4222" .Release.Name .Release.Namespace -}}
{{- else -}}
{{- fail "set natsUrl (nats://host:4222) or nats.enabled=true" -}}
{{- end -}}
{{- end -}}

{{/* Replicas of every stream and bucket: given, or as many as the bundled NATS cluster has servers. */}}
{{- define "artdag.natsReplicas" -}}
{{- if .Values.natsReplicas -}}
{{- .Values.natsReplicas -}}
{{- else if and .Values.nats.enabled .Values.nats.config.cluster .Values.nats.config.cluster.enabled -}}
{{- min 5 (.Values.nats.config.cluster.replicas | default 3) -}}
{{- else -}}
1
{{- end -}}
{{- end -}}

{{- define "artdag.natsMonitoring" -}}
{{- default (printf "%s-nats.%s.svc:8222" .Release.Name .Release.Namespace) .Values.autoscaling.keda.natsMonitoringEndpoint -}}
{{- end -}}

{{- define "artdag.devDatabaseHost" -}}
{{- printf "%s-postgresql" (include "artdag.fullname" .) -}}
{{- end -}}

{{/*
Checkov findings that do not apply, each with its reason (checkov reads these annotations).
CKV_K8S_35: artdag reads every setting, secrets included, from environment variables (one
  pydantic-settings class per service); the Secret is mounted with envFrom, never logged.
CKV_K8S_43: the image is addressed by tag by default so that `helm upgrade --set image.tag`
  works; production values pin image.digest.
CKV_K8S_15: IfNotPresent is right for immutable tags and digests; Always would make every
  pod start depend on the registry.
*/}}
{{- define "artdag.checkovSkips" -}}
checkov.io/skip1: CKV_K8S_35=settings are environment variables by design; the Secret is read with envFrom
checkov.io/skip2: CKV_K8S_43=tags by default so upgrades can set image.tag; production values pin image.digest
checkov.io/skip3: CKV_K8S_15=IfNotPresent suits immutable tags and digests
{{- end -}}

{{/* The environment shared by every artdag container (settings come from the ConfigMap and Secret). */}}
{{- define "artdag.envFrom" -}}
- configMapRef:
    name: {{ include "artdag.fullname" . }}-config
- secretRef:
    name: {{ include "artdag.secretName" . }}
{{- end -}}

{{/*
One Deployment for one service: (dict "root" $ "name" "executor" "svc" .Values.services.executor).
Every service is the same image started with its name; what differs is in values.services.<name>.
*/}}
{{- define "artdag.deployment" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $svc := .svc -}}
{{- $autoscaled := and $svc.autoscaling (dig "enabled" false $svc.autoscaling) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "artdag.fullname" $root }}-{{ $name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "artdag.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
  annotations:
    {{- include "artdag.checkovSkips" $root | nindent 4 }}
spec:
  {{- if not $autoscaled }}
  replicas: {{ $svc.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "artdag.selectorLabels" (dict "root" $root "name" $name) | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "artdag.selectorLabels" (dict "root" $root "name" $name) | nindent 8 }}
        app.kubernetes.io/part-of: artdag
      annotations:
        # A changed setting rolls the pods (they read settings once, at start).
        checksum/config: {{ include (print $root.Template.BasePath "/config.yaml") $root | sha256sum }}
        checksum/secret: {{ include (print $root.Template.BasePath "/secret.yaml") $root | sha256sum }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "artdag.serviceAccountName" $root }}
      # artdag talks to NATS, the database and the store, never to the Kubernetes API.
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $svc.terminationGracePeriodSeconds | default 30 }}
      containers:
        - name: {{ $name }}
          image: {{ include "artdag.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ $name | quote }}]
          envFrom:
            {{- include "artdag.envFrom" $root | nindent 12 }}
          env:
            - name: ARTDAG_PROBE_PORT
              value: {{ $root.Values.probePort | quote }}
            - name: ARTDAG_PROBE_HOST
              value: "0.0.0.0"
            - name: OTEL_SERVICE_NAME
              value: artdag-{{ $name }}
            {{- if $root.Values.bus.auth }}
            # Each service's own login on the bus: the server lets it say only what its work needs.
            - name: ARTDAG_NATS_USER
              value: {{ $name | quote }}
            - name: ARTDAG_NATS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ default $root.Values.bus.secretName $root.Values.bus.existingSecret }}
                  key: {{ $name }}
            {{- end }}
            {{- range $key, $value := $svc.env }}
            - name: {{ $key }}
              value: {{ $value | quote }}
            {{- end }}
          ports:
            - name: probes
              containerPort: {{ $root.Values.probePort }}
              protocol: TCP
            {{- if $svc.port }}
            - name: http
              containerPort: {{ $svc.port }}
              protocol: TCP
            {{- end }}
          # Alive while the event loop answers; ready only while connected to NATS (and, for the gateway,
          # while its HTTP server answers on the API port).
          livenessProbe:
            httpGet:
              path: /livez
              port: probes
            initialDelaySeconds: 5
            periodSeconds: 15
            timeoutSeconds: 3
            failureThreshold: 4
          readinessProbe:
            httpGet:
              path: /readyz
              port: {{ if $svc.port }}http{{ else }}probes{{ end }}
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          startupProbe:
            httpGet:
              path: /livez
              port: probes
            periodSeconds: 2
            failureThreshold: 60
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: scratch
              mountPath: /data
            - name: tmp
              mountPath: /tmp
            {{- if and $root.Values.auth.keysSecret (eq $name "cache") }}
            # The L1's signing keys (only the cache service signs).
            - name: keys
              mountPath: /keys
              readOnly: true
            {{- end }}
      volumes:
        - name: scratch
          emptyDir:
            sizeLimit: {{ $root.Values.scratch.sizeLimit }}
        {{- if and $root.Values.auth.keysSecret (eq $name "cache") }}
        - name: keys
          secret:
            secretName: {{ $root.Values.auth.keysSecret }}
            defaultMode: 0400
        {{- end }}
        # On disk, not in memory: libraries may spool request bodies to /tmp.
        - name: tmp
          emptyDir:
            sizeLimit: 1Gi
      {{- with (default $root.Values.nodeSelector $svc.nodeSelector) }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (default $root.Values.tolerations $svc.tolerations) }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with (default $root.Values.affinity $svc.affinity) }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* The database URL: the external one, or the development PostgreSQL's. */}}
{{- define "artdag.databaseUrl" -}}
{{- if .Values.database.url -}}
{{- .Values.database.url -}}
{{- else if .Values.database.dev.enabled -}}
{{- printf "postgresql://artdag:%s@%s:5432/artdag" .Values.database.dev.password (include "artdag.devDatabaseHost" .) -}}
{{- else -}}
{{- fail "set database.url (postgresql://…), existingSecret, or database.dev.enabled=true" -}}
{{- end -}}
{{- end -}}
