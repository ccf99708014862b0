"""A TLS front for a plaintext Kafka broker, for tests/it/kafka.rs.

    tls_proxy.py LISTEN_PORT UPSTREAM_PORT CERT KEY [--client-ca CA]

tansu 0.6 cannot serve TLS itself (its --cert and --key refuse each other
and its listener never uses the acceptor), so the TLS tests put this in
front of it: it accepts TLS on 127.0.0.1:LISTEN_PORT with CERT and KEY
(Python's ssl module, OpenSSL), with --client-ca it requires a client
certificate signed by CA (mutual TLS), and it copies bytes both ways to
the broker's plaintext listener on 127.0.0.1:UPSTREAM_PORT. The broker
advertises LISTEN_PORT, so every client connection goes through here.
Prints "listening" once it accepts; runs until killed.
"""

import argparse
import asyncio
import ssl


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("listen_port", type=int)
    parser.add_argument("upstream_port", type=int)
    parser.add_argument("cert")
    parser.add_argument("key")
    parser.add_argument("--client-ca")
    args = parser.parse_args()

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args.client_ca)

    async def serve(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", args.upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, upstream_writer),
            pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(
        serve, "127.0.0.1", args.listen_port, ssl=context)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
