/**
 * -uPnPPortForwarding: asks the internet gateways of the local network (UPnP IGD:1 or IGD:2) to
 * forward our BitTorrent port, TCP and UDP, to this host, so peers outside the NAT can dial us.
 *
 * The external port is the listen port itself: it is the port we announce to trackers, the DHT and
 * peers, so a mapping to any other port would be useless. A gateway that refuses (a conflict with
 * another host's mapping, forwarding turned off) is reported in the status and the log; the service
 * works as before. Mappings are leased for PORT_MAPPING_LEASE_S and renewed at half the lease;
 * gateways that only take permanent mappings get one. `close()` deletes them.
 *
 * Nothing is sent until `start()`, and start does not wait for the search: the service is usable
 * at once and the mappings appear seconds later.
 */
import { EventEmitter } from 'node:events';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import {
  localAddressTowards,
  type PortMappingProtocol,
  searchGateways,
  UpnpGateway,
} from './upnp-gateway.js';
import { UPNP_ONLY_PERMANENT_LEASES, UpnpFaultError } from './upnp-messages.js';

export const PORT_MAPPING_LEASE_S = 3600;
export const PORT_MAPPING_DESCRIPTION = 'confluence-ts';
/** How long `close()` waits for each gateway to delete our mappings. */
export const UNMAP_TIMEOUT_MS = 2000;

export interface PortMappingStatus {
  readonly protocol: PortMappingProtocol;
  readonly externalPort: number;
  readonly internalHost: string;
  readonly internalPort: number;
  /** 0: permanent (the gateway takes nothing else). */
  readonly leaseSeconds: number;
}

export interface GatewayStatus {
  readonly location: string;
  readonly externalIp?: string;
  readonly mappings: readonly PortMappingStatus[];
  /** The last failure with this gateway, if its last attempt failed. */
  readonly error?: string;
}

export interface PortForwardingStatus {
  /** searching: finding gateways or mapping; ready: done (see each gateway); closed. */
  readonly state: 'searching' | 'ready' | 'closed';
  readonly port: number;
  readonly gateways: readonly GatewayStatus[];
}

export interface PortForwarderEvents {
  'mapping:added': [{ gateway: string; mapping: PortMappingStatus; externalIp?: string }];
  'mapping:failed': [{ gateway?: string; protocol?: PortMappingProtocol; error: Error }];
}

export interface PortForwarderOptions {
  /** The BitTorrent listen port, TCP and UDP. */
  readonly port: number;
  readonly protocols: readonly PortMappingProtocol[];
  /** The IPv4 address the port is bound to, when not a wildcard; else the one facing each gateway. */
  readonly internalHost?: string;
  /** Device description URLs to use instead of an SSDP search. */
  readonly gateways?: readonly URL[];
  readonly clock?: Clock;
  readonly leaseSeconds?: number;
}

interface Entry {
  readonly location: string;
  gateway?: UpnpGateway;
  externalIp?: string;
  mappings: PortMappingStatus[];
  error?: string;
}

export class PortForwarder extends EventEmitter<PortForwarderEvents> {
  readonly #o: PortForwarderOptions;
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  #state: PortForwardingStatus['state'] = 'searching';
  #entries: Entry[] = [];
  #run: Promise<void> | undefined;
  #refresh: TimerHandle | undefined;

  constructor(o: PortForwarderOptions) {
    super();
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
  }

  /** Begins the search and the mappings in the background; failures go to 'mapping:failed'. */
  start(): void {
    this.#run ??= this.#mapAll().finally(() => {
      if (this.#state === 'searching') this.#state = 'ready';
    });
  }

  status(): PortForwardingStatus {
    return {
      state: this.#state,
      port: this.#o.port,
      gateways: this.#entries.map((e) => ({
        location: e.location,
        ...(e.externalIp === undefined ? {} : { externalIp: e.externalIp }),
        mappings: [...e.mappings],
        ...(e.error === undefined ? {} : { error: e.error }),
      })),
    };
  }

  /** Stops renewing and deletes the mappings (each gateway within UNMAP_TIMEOUT_MS). */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#abort.abort();
    if (this.#refresh !== undefined) this.#clock.clearTimeout(this.#refresh);
    await this.#run;
    this.#state = 'closed';
    await Promise.all(
      this.#entries.map(async (e) => {
        const signal = AbortSignal.timeout(UNMAP_TIMEOUT_MS);
        for (const m of e.mappings.splice(0)) {
          await e.gateway?.deletePortMapping(m, { signal }).catch(() => undefined);
        }
      }),
    );
  }

  async #mapAll(): Promise<void> {
    const signal = this.#abort.signal;
    let locations: readonly URL[];
    try {
      locations = this.#o.gateways ?? (await searchGateways({ signal }));
    } catch (e) {
      this.emit('mapping:failed', { error: e as Error });
      return;
    }
    if (signal.aborted) return;
    this.#entries = locations.map((l) => ({ location: l.href, mappings: [] }));
    if (this.#entries.length === 0) {
      this.emit('mapping:failed', { error: new Error('no UPnP internet gateway answered the search') });
      return;
    }
    await Promise.all(this.#entries.map((e) => this.#mapOn(e, signal)));
    this.#scheduleRefresh();
  }

  async #mapOn(e: Entry, signal: AbortSignal): Promise<void> {
    try {
      e.gateway ??= await UpnpGateway.open(new URL(e.location), { signal });
      const internalHost =
        this.#o.internalHost ?? (await localAddressTowards(e.gateway.host, e.gateway.port));
      const externalIp = await e.gateway.externalIp({ signal });
      if (externalIp !== '') e.externalIp = externalIp;
      const mapped: PortMappingStatus[] = [];
      for (const protocol of this.#o.protocols) {
        mapped.push(await this.#add(e.gateway, protocol, internalHost, signal));
      }
      e.mappings = mapped;
      delete e.error;
      for (const mapping of mapped) {
        this.emit('mapping:added', {
          gateway: e.location,
          mapping,
          ...(e.externalIp === undefined ? {} : { externalIp: e.externalIp }),
        });
      }
    } catch (err) {
      if (signal.aborted) return;
      e.error = (err as Error).message;
      this.emit('mapping:failed', { gateway: e.location, error: err as Error });
    }
  }

  async #add(
    gateway: UpnpGateway,
    protocol: PortMappingProtocol,
    internalHost: string,
    signal: AbortSignal,
  ): Promise<PortMappingStatus> {
    const base = {
      protocol,
      externalPort: this.#o.port,
      internalClient: internalHost,
      internalPort: this.#o.port,
      description: PORT_MAPPING_DESCRIPTION,
    };
    let leaseSeconds = this.#o.leaseSeconds ?? PORT_MAPPING_LEASE_S;
    try {
      await gateway.addPortMapping({ ...base, leaseSeconds }, { signal });
    } catch (err) {
      if (!(err instanceof UpnpFaultError && err.upnpCode === UPNP_ONLY_PERMANENT_LEASES)) throw err;
      leaseSeconds = 0;
      await gateway.addPortMapping({ ...base, leaseSeconds }, { signal });
    }
    return { protocol, externalPort: this.#o.port, internalHost, internalPort: this.#o.port, leaseSeconds };
  }

  /** Renews every lease at half its length; a gateway that failed is tried again then too. */
  #scheduleRefresh(): void {
    const lease = this.#o.leaseSeconds ?? PORT_MAPPING_LEASE_S;
    const needed = this.#entries.some(
      (e) => e.error !== undefined || e.mappings.some((m) => m.leaseSeconds > 0),
    );
    if (!needed || this.#abort.signal.aborted) return;
    this.#refresh = this.#clock.setTimeout(
      () => {
        this.#refresh = undefined;
        const signal = this.#abort.signal;
        this.#run = Promise.all(this.#entries.map((e) => this.#mapOn(e, signal))).then(() =>
          this.#scheduleRefresh(),
        );
      },
      (lease * 1000) / 2,
    );
  }
}
