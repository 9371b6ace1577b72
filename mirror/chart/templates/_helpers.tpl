{{/* Chart name, shortened to the 63 characters a label value allows. */}}
{{- define "peili.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's resources. The longest suffix used is "-cleanup-wait" (13), so the
base is cut at 50 to keep every derived name a valid 63-character DNS label.
*/}}
{{- define "peili.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart label value: name-version, with "+" made label-safe. */}}
{{- define "peili.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of the release that no selector uses. */}}
{{- define "peili.metaLabels" -}}
helm.sh/chart: {{ include "peili.chart" . }}
app.kubernetes.io/version: {{ (include "peili.imageTag" .) | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels shared by every object (each adds its app.kubernetes.io/component). */}}
{{- define "peili.labels" -}}
{{ include "peili.metaLabels" . }}
app.kubernetes.io/name: {{ include "peili.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of the daemon pods; the component keeps it disjoint from the cleanup hook's pods. */}}
{{- define "peili.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peili.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: mirror
{{- end }}

{{/* Selector of the post-delete cleanup pods. */}}
{{- define "peili.cleanupSelectorLabels" -}}
app.kubernetes.io/name: {{ include "peili.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: cleanup
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion. */}}
{{- define "peili.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "peili.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "peili.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Name of the headless Service the members are discovered through. */}}
{{- define "peili.peersService" -}}
{{- printf "%s-peers" (include "peili.fullname" .) }}
{{- end }}

{{/* Its FQDN, given to --members-dns. */}}
{{- define "peili.peersFqdn" -}}
{{- printf "%s.%s.svc.%s" (include "peili.peersService" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* Where the node's registry config path is mounted in the configure and cleanup containers. */}}
{{- define "peili.hostConfigPath" -}}
{{- printf "/host%s" .Values.peili.containerdRegistryConfigPath }}
{{- end }}

{{/*
Container security context shared by the containers that touch host paths: uid 0 because the
containerd socket and the registry config path are root-owned host files (fsGroup does not apply
to hostPath volumes), but with every capability dropped, no privilege escalation and a read-only
root filesystem.
*/}}
{{- define "peili.hostSecurityContext" -}}
runAsUser: 0
runAsGroup: 0
runAsNonRoot: false
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Tolerations, node selector and affinity: shared by the daemon and the cleanup hook. */}}
{{- define "peili.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Secret holding the shared peer certificate, its key and the CA. */}}
{{- define "peili.peerTlsSecret" -}}
{{- .Values.peerTls.existingSecret | default (printf "%s-peer-tls" (include "peili.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{/* The DNS name every peer certificate carries (--peer-tls-name). */}}
{{- define "peili.peerTlsName" -}}
{{- .Values.peerTls.name | default (printf "%s.%s" (printf "%s-peer" (include "peili.fullname" .) | trunc 63 | trimSuffix "-") .Release.Namespace) }}
{{- end }}
