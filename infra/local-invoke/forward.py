"""TCP forwarder: lets the Lambda containers reach emulators that listen on loopback only.

    python3 forward.py LISTEN_ADDRESS TARGET_PORT...

For each TARGET_PORT (on 127.0.0.1) it listens on LISTEN_ADDRESS at a port the kernel picks,
prints "TARGET_PORT LISTEN_PORT" (one line each, all before any connection is served) and
then copies bytes both ways until it is terminated. infra/local-invoke.sh runs it on the
Docker bridge's gateway address, the one address of the host that a container on the default
bridge can reach. Standard library only.
"""

import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


def handler(target_port):
    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer)
        )

    return handle


async def main(listen_address, target_ports):
    servers = []
    for target_port in target_ports:
        server = await asyncio.start_server(handler(target_port), listen_address, 0)
        servers.append(server)
        print(target_port, server.sockets[0].getsockname()[1])
    sys.stdout.flush()
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    try:
        asyncio.run(main(sys.argv[1], [int(port) for port in sys.argv[2:]]))
    except KeyboardInterrupt:
        pass
