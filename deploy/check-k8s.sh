#!/usr/bin/env bash
# Checks the Kubernetes manifests (deploy/k8s/) without a cluster: renders
# every overlay with `kubectl kustomize`, validates each document strictly
# against the Kubernetes API schemas (kubernetes-validate, from PyPI, installed
# once under $HOME/.cache), then checks that the manifests agree with the code
# (deploy/k8s/check-agreement.py: variables, ports, probes, files, URLs,
# network policies). Part of `make test` and `make k8s`; fails on the first problem.
set -euo pipefail
# shellcheck source=deploy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# the kubernetes-validate release pinned (its schemas go up to Kubernetes 1.37)
VALIDATE_VERSION=1.37.0
# the oldest Kubernetes the manifests support (gRPC probes, preStop sleep,
# matchLabelKeys) and the newest the schemas know: removed APIs show there
K8S_VERSIONS=(1.32.0 1.37.0)
TOOLS_DIR="${DISPATCH311_TOOLS_DIR:-$HOME/.cache/dispatch311-tools}"

command -v kubectl >/dev/null ||
    die "kubectl not found: install kubectl 1.27 or later (kustomize v5; Debian's kubernetes-client is too old) and run again"
command -v python3 >/dev/null || apt_install python3
# --target, not a venv: needs no python3-venv, and Debian's pip allows it; one
# directory per Python version, as some of the packages are compiled
python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VALIDATE_DIR="$TOOLS_DIR/kubernetes-validate-$VALIDATE_VERSION-py$python"

if [[ ! -f "$VALIDATE_DIR/.installed" ]]; then
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    say "installing kubernetes-validate $VALIDATE_VERSION into $VALIDATE_DIR"
    rm -rf "$VALIDATE_DIR"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
        --no-warn-script-location --target "$VALIDATE_DIR" "kubernetes-validate==$VALIDATE_VERSION" ||
        die "pip could not install kubernetes-validate $VALIDATE_VERSION"
    touch "$VALIDATE_DIR/.installed"
fi
# kubernetes-validate brings PyYAML, which check-agreement.py uses too
export PYTHONPATH="$VALIDATE_DIR${PYTHONPATH:+:$PYTHONPATH}"

cd "$repo_root"
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT

agreement_args=()
for overlay in deploy/k8s/overlays/*/; do
    overlay=${overlay%/}
    name=$(basename "$overlay")
    if ! kubectl kustomize "$overlay" >"$rendered/$name.yaml" 2>"$rendered/$name.err"; then
        cat "$rendered/$name.err" >&2
        die "$overlay: kubectl kustomize FAILED (its output above)"
    fi
    documents=$(grep -c '^kind:' "$rendered/$name.yaml" || true)
    for version in "${K8S_VERSIONS[@]}"; do
        # --quiet prints only problems; a WARN (no schema: a misspelt kind or
        # apiVersion) fails as surely as an ERROR
        if ! output=$(python3 -m kubernetes_validate --strict --quiet -k "$version" "$rendered/$name.yaml" 2>&1) ||
            [[ -n $output ]]; then
            printf '%s\n' "$output" >&2
            die "$overlay: not valid against the Kubernetes $version schemas (strict; see above)"
        fi
    done
    say "ok: $overlay renders $documents documents, valid against Kubernetes ${K8S_VERSIONS[*]} (strict)"
    agreement_args+=("$name=$rendered/$name.yaml")
done
((${#agreement_args[@]})) || die "no overlay found under deploy/k8s/overlays"

python3 deploy/k8s/check-agreement.py "${agreement_args[@]}" ||
    die "the manifests disagree with the code (listed above)"
say "ok: the manifests agree with the code"
