import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP forwarder on 127.0.0.1 that can be cut (listener closed, every piped socket destroyed) and
 * restored: a real database outage between the app's pg pool and PostgreSQL, without mocking
 * (test/integration/db-outage.test.ts, faults.test.ts).
 */
export class TcpProxy {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly target: { host: string; port: number };

  constructor(target: { host: string; port: number }) {
    this.target = target;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /**
   * Listens on `port` (0 = an ephemeral port the first time; the same one on restore).
   * `blackhole` accepts connections and then says nothing, like a wedged server or a dropped route.
   */
  async start(port = this.port, mode: 'forward' | 'blackhole' = 'forward'): Promise<void> {
    const server = createServer((client) => {
      if (mode === 'blackhole') {
        this.sockets.add(client);
        client.on('close', () => this.sockets.delete(client));
        client.on('error', () => client.destroy());
        return;
      }
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        // A cut makes both ends error; the proxy must not crash the test process either.
        socket.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** The outage: no new connections (refused) and every existing one torn down. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }
}
