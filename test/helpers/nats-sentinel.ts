/**
 * Proof that a NATS payload reached a client connection: publish it, then a sentinel from the same publisher
 * on a subject the test listens to on that connection. NATS keeps one publisher's order and nats.js
 * dispatches one connection's messages in order, so when the sentinel arrives, the callbacks for the
 * payload have run.
 */
import type { NatsConnection } from 'nats';

const encoder = new TextEncoder();

export class SentinelDelivery {
  readonly #publisher: NatsConnection;
  readonly #subject: string;
  readonly #waiters = new Map<string, () => void>();
  #seq = 0;

  private constructor(publisher: NatsConnection, subject: string) {
    this.#publisher = publisher;
    this.#subject = subject;
  }

  /** Listens for sentinels on `clients` (the connection handed to the clients) until it closes. */
  static async attach(publisher: NatsConnection, clients: NatsConnection, subject: string): Promise<SentinelDelivery> {
    const delivery = new SentinelDelivery(publisher, subject);
    clients.subscribe(subject, {
      callback: (_error, message) => {
        const id = message.string();
        delivery.#waiters.get(id)?.();
        delivery.#waiters.delete(id);
      },
    });
    await clients.flush();
    return delivery;
  }

  /** Publishes `data` on `subject`, then a sentinel; resolves once the sentinel reached the clients' connection. */
  async deliver(subject: string, data: Uint8Array, timeoutMs = 5_000): Promise<void> {
    const id = String(++this.#seq);
    const arrived = new Promise<void>((resolve) => this.#waiters.set(id, resolve));
    this.#publisher.publish(subject, data);
    this.#publisher.publish(this.#subject, encoder.encode(id));
    await this.#publisher.flush();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      arrived,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`sentinel ${id} never arrived: nats delivery is broken`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }
}
