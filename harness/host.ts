// Host computers 100P and 100R: alive or not, and the heartbeat they exchange (¶0059). A host that stops
// hearing its peer's heartbeat for `timeoutUs` concludes that the peer or its storage system failed (S200).

import type { World } from './world.ts';

export interface HeartbeatOptions {
  intervalUs: number;
  timeoutUs: number;
  /** One-way delay of the heartbeat network between the hosts. */
  networkUs: number;
}

export const DEFAULT_HEARTBEAT: HeartbeatOptions = { intervalUs: 100_000, timeoutUs: 500_000, networkUs: 5_000 };

export class Host {
  alive = true;
  /** Alive but cut off from the heartbeat network: the peer thinks it failed while it runs on. */
  partitioned = false;
  lastHeardUs: number;
  private running = true;
  private peer: Host | null = null;
  private loop: Promise<void> | null = null;

  constructor(readonly world: World, readonly name: string, readonly hb: HeartbeatOptions = DEFAULT_HEARTBEAT) {
    this.lastHeardUs = world.nowUs();
  }

  /** Starts exchanging heartbeats with `peer`. */
  pairWith(peer: Host): void {
    this.peer = peer;
    this.lastHeardUs = this.world.nowUs();
    this.loop = this.beat();
  }

  private async beat(): Promise<void> {
    while (this.running) {
      await this.world.sleep(this.hb.intervalUs);
      if (this.alive && !this.partitioned && this.running && this.peer && !this.peer.partitioned) this.peer.hear(this.world.nowUs() + this.hb.networkUs);
    }
  }

  private hear(atUs: number): void {
    if (this.alive) this.lastHeardUs = Math.max(this.lastHeardUs, atUs);
  }

  /** Counts crashes, so whoever crashed a host can tell whether someone crashed it again since. */
  crashes = 0;

  /** The host crashes (or is cut off): it stops sending heartbeats and running applications. */
  crash(): void { this.alive = false; this.crashes++; }
  recover(): void { this.alive = true; this.lastHeardUs = this.world.nowUs(); }
  partition(): void { this.partitioned = true; }
  /** Every host fault repaired: up and on the heartbeat network again. */
  heal(): void { this.partitioned = false; if (!this.alive) this.recover(); }

  peerSilentUs(): number { return this.world.nowUs() - this.lastHeardUs; }

  /** S200: waits until the peer's heartbeat has been missing for the timeout; resolves with the silence in µs. */
  async detectPeerFailure(pollUs = 10_000, giveUpUs = 60_000_000): Promise<number> {
    const start = this.world.nowUs();
    while (this.peerSilentUs() <= this.hb.timeoutUs) {
      if (this.world.nowUs() - start > giveUpUs) throw new Error(`${this.name}: peer heartbeat never stopped`);
      await this.world.sleep(pollUs);
    }
    return this.peerSilentUs();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
