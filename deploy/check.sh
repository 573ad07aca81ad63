#!/usr/bin/env bash
# Validates the deployment material offline: the Dockerfile, the Helm chart in
# every profile, the rendered manifests against Kubernetes' schemas, and the
# alert rules with their unit tests. Run by .ci/run; `bash deploy/check.sh`.
#
# Tools come from the Go module proxy, pinned, built once into GOPATH/bin and
# reused while the installed version matches (`go version -m`). Measured on a
# 2-core machine from a cold cache: helm 340 s, promtool 759 s, kubeconform
# 70 s, about 20 minutes in all (CI's budget is 90); later runs skip them and
# the whole check takes about 15 s (first schema generation: a few seconds more).
#
# Schemas (kubeconform has no network here): the k8s.io/kubernetes module
# carries Kubernetes' own OpenAPI (api/openapi-spec/swagger.json) and the
# prometheus-operator module carries its CRDs as JSON
# (jsonnet/prometheus-operator/*-crd.json). `go mod download` fetches both
# from the proxy, and tools/kube-schemas.ts turns them into the strict,
# standalone per-kind schemas kubeconform reads from a local folder.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v3.22.0
PROMETHEUS_VERSION=v0.316.0 # promtool
KUBECONFORM_VERSION=v0.8.0
KUBERNETES_VERSION=1.34.4 # the API version rendered and validated against
PROMETHEUS_OPERATOR_VERSION=v0.85.0
DOCKERFILE_UTILS_VERSION=0.16.3 # npm: the Dockerfile linter of VS Code's Docker extension

CHART=deploy/helm/roomcast
GOBIN="$(go env GOPATH)/bin"
export PATH="$GOBIN:$PATH"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/roomcast-deploy-check"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# go_tool NAME MODULE VERSION PACKAGE: installs unless that version is there.
go_tool() {
  local name=$1 module=$2 version=$3 package=$4 have=""
  if [ -x "$GOBIN/$name" ]; then
    have=$(go version -m "$GOBIN/$name" | awk -v m="$module" '$1 == "mod" && $2 == m { print $3 }')
  fi
  if [ "$have" = "$version" ]; then
    echo "$name $version: installed"
    return
  fi
  local start=$SECONDS
  echo "$name $version: go install $package@$version"
  go install "$package@$version"
  echo "$name $version: built in $((SECONDS - start)) s"
}

# module_dir MODULE@VERSION: downloads a module from the proxy, prints its folder.
module_dir() {
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p'
}

step "tools"
go_tool helm helm.sh/helm/v3 "$HELM_VERSION" helm.sh/helm/v3/cmd/helm
go_tool promtool github.com/prometheus/prometheus "$PROMETHEUS_VERSION" \
  github.com/prometheus/prometheus/cmd/promtool
go_tool kubeconform github.com/yannh/kubeconform "$KUBECONFORM_VERSION" \
  github.com/yannh/kubeconform/cmd/kubeconform

step "Dockerfile"
npx --yes "dockerfile-utils@$DOCKERFILE_UTILS_VERSION" lint Dockerfile
# What the issue asks of the image, which a generic linter does not know.
grep -Eq '^FROM .* AS build$' Dockerfile || fail "Dockerfile: no build stage"
[ "$(grep -c '^FROM ' Dockerfile)" -ge 2 ] || fail "Dockerfile: not multi-stage"
grep -Eq '^USER node$' Dockerfile || fail "Dockerfile: not run as the node user"
grep -Eq 'NODE_ENV=production' Dockerfile || fail "Dockerfile: NODE_ENV=production missing"
grep -Eq '^HEALTHCHECK .*' Dockerfile && grep -q '/healthz' Dockerfile || fail "Dockerfile: HEALTHCHECK on /healthz missing"
grep -Eq '^STOPSIGNAL SIGTERM$' Dockerfile || fail "Dockerfile: STOPSIGNAL SIGTERM missing"
grep -q 'npm prune --omit=dev' Dockerfile || fail "Dockerfile: dev dependencies not pruned"
echo "Dockerfile: ok"

step "schemas (Kubernetes $KUBERNETES_VERSION, prometheus-operator $PROMETHEUS_OPERATOR_VERSION)"
SCHEMAS="$CACHE/schemas-k8s-$KUBERNETES_VERSION-po-$PROMETHEUS_OPERATOR_VERSION"
if [ ! -f "$SCHEMAS/deployment-apps-v1.json" ]; then
  k8s=$(module_dir "k8s.io/kubernetes@v$KUBERNETES_VERSION")
  po=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  [ -n "$k8s" ] && [ -n "$po" ] || fail "module download"
  [ -f dist/tools/kube-schemas.js ] && [ dist/tools/kube-schemas.js -nt tools/kube-schemas.ts ] ||
    npm run --silent build
  rm -rf "$SCHEMAS.tmp"
  node dist/tools/kube-schemas.js "$SCHEMAS.tmp" "$k8s/api/openapi-spec/swagger.json" \
    "$po/jsonnet/prometheus-operator/servicemonitors-crd.json" \
    "$po/jsonnet/prometheus-operator/prometheusrules-crd.json"
  mv "$SCHEMAS.tmp" "$SCHEMAS"
else
  echo "cached in $SCHEMAS"
fi

# Profiles: name and helm arguments. `cluster-set` is the original design's form.
profiles=(
  "embedded|"
  "embedded-full|-f $CHART/ci/embedded-values.yaml"
  "cluster-set|--set config.cluster.enabled=true"
  "cluster-redis|--set config.cluster.enabled=true --set config.cluster.broker=redis --set config.cluster.migrations.enabled=false"
  "cluster-full|-f $CHART/ci/cluster-values.yaml"
)

for p in "${profiles[@]}"; do
  name=${p%%|*}
  # shellcheck disable=SC2206 # the arguments are split on purpose
  args=(${p#*|})
  step "profile $name: helm lint, helm template, kubeconform"
  helm lint --strict --kube-version "$KUBERNETES_VERSION" "$CHART" "${args[@]}"
  helm template roomcast "$CHART" --namespace default --kube-version "$KUBERNETES_VERSION" \
    "${args[@]}" >"$WORK/$name.yaml"
  kubeconform -strict -summary -output text \
    -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" "$WORK/$name.yaml"
done

step "chart invariants"
# kinds: the sorted kinds a profile renders.
kinds() { grep -E '^kind: ' "$WORK/$1.yaml" | sort | uniq | awk '{print $2}' | paste -sd, -; }
expect() { [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"; }
expect "embedded kinds" "$(kinds embedded)" "Deployment,PersistentVolumeClaim,Service,ServiceAccount"
expect "cluster-set kinds" "$(kinds cluster-set)" \
  "Deployment,Job,PodDisruptionBudget,Secret,Service,ServiceAccount"
expect "cluster-full kinds" "$(kinds cluster-full)" \
  "Deployment,HorizontalPodAutoscaler,Ingress,Job,NetworkPolicy,PodDisruptionBudget,PrometheusRule,Service,ServiceAccount,ServiceMonitor"
grep -q 'type: Recreate' "$WORK/embedded.yaml" || fail "embedded: not Recreate"
grep -q 'maxUnavailable: 0' "$WORK/cluster-set.yaml" || fail "cluster: maxUnavailable is not 0"
grep -q 'terminationGracePeriodSeconds: 35' "$WORK/cluster-set.yaml" || fail "grace period is not preStop + DRAIN_PERIOD + 10"
grep -q '"helm.sh/hook": pre-install,pre-upgrade\|helm.sh/hook: pre-install,pre-upgrade' "$WORK/cluster-set.yaml" ||
  fail "cluster: no pre-install/pre-upgrade migration hook"
# The migration Job's pod must not match the Service's selector.
awk '/^---/ { job = 0; pod = 0 } /^kind: Job/ { job = 1 } job && /^  template:/ { pod = 1 }
  pod && /app.kubernetes.io\/name: roomcast$/ { bad = 1 } END { exit bad }' \
  "$WORK/cluster-set.yaml" || fail "the migration pod carries the server's selector labels"
# values.schema.json and the template guards refuse bad values at render time.
refuse() {
  local why=$1
  shift
  if helm template roomcast "$CHART" --kube-version "$KUBERNETES_VERSION" "$@" >/dev/null 2>"$WORK/err"; then
    fail "rendered with $* ($why)"
  fi
  echo "refused ($why): $(grep -m1 -E "at '|must be" "$WORK/err" || head -1 "$WORK/err")"
}
refuse "unknown value" --set replicas=3
refuse "bad broker" --set config.cluster.broker=kafka
refuse "drain period as a string" --set config.drainPeriodSeconds=20s
refuse "grace period shorter than the drain" --set terminationGracePeriodSeconds=20
refuse "metrics on the HTTP port" --set metrics.port=8080
refuse "ingress timeout below the ping interval" --set ingress.timeoutSeconds=30

step "alert rules: promtool check and unit tests"
helm template roomcast "$CHART" --namespace default --kube-version "$KUBERNETES_VERSION" \
  --set monitoring.prometheusRule.enabled=true --show-only templates/prometheusrule.yaml |
  awk 'found { sub(/^  /, ""); print } /^spec:/ { found = 1 }' >"$WORK/roomcast.rules.yaml"
cp deploy/alerts/roomcast.rules.test.yaml "$WORK/"
promtool check rules "$WORK/roomcast.rules.yaml"
promtool test rules "$WORK/roomcast.rules.test.yaml"

echo
echo "deploy/check.sh: all checks passed"
