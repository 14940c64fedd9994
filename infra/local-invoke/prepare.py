"""Helpers of infra/local-invoke.sh that need YAML or an AWS client; run with the SAM CLI venv's
Python (it has samcli, for CloudFormation's YAML tags, and boto3).

    prepare.py template SRC OUT LAMBDA_DIR
        Writes OUT: SRC (template.yaml) with each function's CodeUri pointed at
        LAMBDA_DIR/<Binary> (cargo-lambda's output folder holding its bootstrap) and the AWS
        endpoint variables declared, so that `sam local invoke --env-vars` may set them (SAM
        passes a container only the variables the template declares). Prints one line per
        function: "LogicalId Binary kind", kind being http, scheduled or other.

    prepare.py secret NAME
        Creates the token signing secret NAME in Secrets Manager (the endpoint comes from
        AWS_ENDPOINT_URL), or keeps the one there; prints its ARN.

    prepare.py env-vars OUT NAME=VALUE...
        Writes OUT, a file for `sam local invoke --env-vars`: the variables for every function.

    prepare.py sam ARGUMENT...
        Runs the SAM CLI with ARGUMENTs, its readiness check made to see through docker-proxy
        (see emulator_listening).
"""

import json
import secrets
import sys

# Variables the SDK reads to find the emulators (as infra/emulators.sh's env sets them).
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")


def template(src, out, lambda_dir):
    from samcli.yamlhelper import yaml_dump, yaml_parse

    with open(src, encoding="utf-8") as file:
        document = yaml_parse(file.read())
    variables = (
        document.setdefault("Globals", {})
        .setdefault("Function", {})
        .setdefault("Environment", {})
        .setdefault("Variables", {})
    )
    for name in ENDPOINT_VARIABLES:
        variables.setdefault(name, "")
    lines = []
    for logical_id, resource in document.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = (resource.get("Metadata") or {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            continue
        properties = resource.setdefault("Properties", {})
        properties["CodeUri"] = f"{lambda_dir}/{binary}"
        # The build is done (by cargo-lambda, outside SAM): nothing here for `sam build`.
        resource.pop("Metadata", None)
        kinds = {event.get("Type") for event in (properties.get("Events") or {}).values()}
        kind = "http" if "HttpApi" in kinds else "scheduled" if "Schedule" in kinds else "other"
        lines.append(f"{logical_id} {binary} {kind}")
    with open(out, "w", encoding="utf-8") as file:
        file.write(yaml_dump(document))
    print("\n".join(lines))


def secret(name):
    import boto3

    client = boto3.client("secretsmanager")
    try:
        arn = client.describe_secret(SecretId=name)["ARN"]
    except client.exceptions.ResourceNotFoundException:
        # 64 characters, letters and digits, as the template's GenerateSecretString asks.
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        value = "".join(secrets.choice(alphabet) for _ in range(64))
        arn = client.create_secret(Name=name, SecretString=value)["ARN"]
    print(arn)


def env_vars(out, pairs):
    variables = dict(pair.split("=", 1) for pair in pairs)
    with open(out, "w", encoding="utf-8") as file:
        json.dump({"Parameters": variables}, file, indent=2)
        file.write("\n")


def emulator_listening(container):
    """Whether the emulator in `container` (SAM's Container) accepts connections, in place of
    SAM's own check, which only connects to the published port. With dockerd's --iptables=false
    that port is docker-proxy's, which accepts at once and only then dials the container: SAM
    would post the event within its 0.7 s of retries, before the emulator (an arm64 Go program
    under qemu) listens, and report "No response from invoke container". docker-proxy closes a
    connection whose container end refused, and keeps open one that the emulator took, which
    waits for a request: an open connection after a short wait is the emulator listening."""
    import socket

    try:
        with socket.create_connection(
            (container._container_host, container.rapid_port_host), timeout=1
        ) as probe:
            probe.settimeout(0.25)
            try:
                return probe.recv(1) != b""  # closed by docker-proxy: not yet
            except socket.timeout:
                return True
    except OSError:
        return False


def sam(arguments):
    from samcli.cli.main import cli
    from samcli.local.docker.container import Container

    Container._can_connect_to_socket = emulator_listening
    sys.argv = ["sam", *arguments]
    sys.exit(cli())


if __name__ == "__main__":
    command, arguments = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "template" and len(arguments) == 3:
        template(*arguments)
    elif command == "secret" and len(arguments) == 1:
        secret(*arguments)
    elif command == "env-vars" and len(arguments) >= 1:
        env_vars(arguments[0], arguments[1:])
    elif command == "sam":
        sam(arguments)
    else:
        sys.exit(__doc__)
