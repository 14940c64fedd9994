#!/usr/bin/env bash
#
# infra/lint-template.sh — lint the SAM template with SAM CLI and cfn-lint.
#
#   infra/lint-template.sh [TEMPLATE...]  # default: template.yaml and infra/edge-waf.yaml
#
# Installs the pinned tools on first use (infra/tools.sh ensure_lint_tools), then runs
#   1. sam validate --lint --template-file TEMPLATE
#   2. cfn-lint TEMPLATE            (also honours a .cfnlintrc in the current directory)
# Both always run; the exit status is non-zero if either reports a problem.
#
# What these need, as measured with aws-sam-cli 1.170.0 / cfn-lint 1.58.0:
#   * `sam validate --lint` only runs cfn-lint in-process: no credentials, no region and
#     no AWS call (without a region it lints for us-east-1).
#   * Plain `sam validate` (not used here) runs the SAM translator instead; it insists on
#     a region, and would call IAM ListPolicies for a managed-policy name missing from the
#     list bundled with the translator (common ones such as AmazonSQSReadOnlyAccess are
#     bundled and made no call). cfn-lint runs the same translator anyway.
#   * sam tries, at most once a week, to fetch its latest version number from PyPI
#     (5 s timeout, failure only logged with --debug), and records that in
#     ~/.aws-sam/metadata.json. Telemetry is off here (SAM_CLI_TELEMETRY=0).
# To be sure neither tool can reach real AWS with someone's real credentials, they run
# with dummy credentials, no profile or config file, and every AWS endpoint pointed at
# a closed loopback port.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=infra/tools.sh
source "$HERE/tools.sh"

# By default the service's template and the edge's web ACL (infra/edge-waf.yaml, deployed on
# its own in us-east-1).
if [[ $# -gt 0 ]]; then
    templates=("$@")
else
    templates=("$TOOLS_REPO_ROOT/template.yaml" "$TOOLS_REPO_ROOT/infra/edge-waf.yaml")
fi
for template in "${templates[@]}"; do
    if [[ ! -f $template ]]; then
        echo "[lint] ERROR: template not found: $template" >&2
        exit 2
    fi
done

ensure_lint_tools

# Dummy AWS environment (see above).
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN AWS_ENDPOINT_URL_DYNAMODB
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
export AWS_ENDPOINT_URL=http://127.0.0.1:9 # discard port: nothing listens, calls fail at once
export SAM_CLI_TELEMETRY=0

status=0

for template in "${templates[@]}"; do
    echo "[lint] sam validate --lint $template" >&2
    "$LINT_VENV/bin/sam" validate --lint --template-file "$template" || status=1

    echo "[lint] cfn-lint $template" >&2
    if "$LINT_VENV/bin/cfn-lint" "$template"; then
        echo "[lint] cfn-lint: no findings" >&2
    else
        status=1
    fi
done

exit "$status"
