/**
 * -uPnPPortForwarding: asks the gateways of the local network to forward our BitTorrent port, TCP
 * and UDP, to this host, so peers outside the NAT can dial us. Two protocols, tried side by side:
 * UPnP IGD:1/IGD:2 (gateways found by an SSDP search, or named), and NAT-PMP (the default route's
 * gateway, or a named one).
 *
 * The external port is the listen port itself: it is the port we announce to trackers, the DHT and
 * peers, so a mapping to any other port would be useless. A gateway that refuses (a conflict with
 * another host's mapping, forwarding turned off) is reported in the status and the log; the service
 * works as before. Mappings are leased for PORT_MAPPING_LEASE_S and renewed at half the shortest
 * lease granted; UPnP gateways that only take permanent mappings get one. `close()` deletes them.
 *
 * Nothing is sent until `start()`, and start does not wait for the search: the service is usable
 * at once and the mappings appear seconds later.
 */
import { EventEmitter } from 'node:events';
import { type Clock, systemClock, type TimerHandle } from '../clock.js';
import { ConfluenceError } from '../errors.js';
import { defaultGateway, NatPmpGateway } from './natpmp-gateway.js';
import { NATPMP_PORT } from './natpmp-messages.js';
import {
  localAddressTowards,
  type PortMappingProtocol,
  searchGateways,
  UpnpGateway,
} from './upnp-gateway.js';
import { UPNP_ONLY_PERMANENT_LEASES, UpnpFaultError } from './upnp-messages.js';

export const PORT_MAPPING_LEASE_S = 3600;
export const PORT_MAPPING_DESCRIPTION = 'confluence-ts';
/** Renewals are never more frequent than this, whatever lease a gateway grants. */
export const MIN_RENEWAL_INTERVAL_MS = 60_000;
/** How long `close()` waits for each gateway to delete our mappings. */
export const UNMAP_TIMEOUT_MS = 2000;

/** The SSDP search found no UPnP gateway. */
export class NoUpnpGatewayError extends ConfluenceError {
  readonly code = 'ERR_NO_UPNP_GATEWAY';
}

export interface PortMappingStatus {
  readonly protocol: PortMappingProtocol;
  readonly externalPort: number;
  readonly internalHost: string;
  readonly internalPort: number;
  /** 0: permanent (the gateway takes nothing else). */
  readonly leaseSeconds: number;
}

export interface GatewayStatus {
  readonly kind: 'upnp' | 'natpmp';
  /** UPnP: the device description URL; NAT-PMP: host:port. */
  readonly location: string;
  readonly externalIp?: string;
  readonly mappings: readonly PortMappingStatus[];
  /** Why the last attempt with this gateway failed, if it did. */
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
  'mapping:failed': [{ gateway?: string; error: Error }];
}

export interface PortForwarderOptions {
  /** The BitTorrent listen port, TCP and UDP. */
  readonly port: number;
  readonly protocols: readonly PortMappingProtocol[];
  /** The IPv4 address the port is bound to, when not a wildcard; else the one facing each gateway. */
  readonly internalHost?: string;
  /** UPnP device description URLs to use instead of an SSDP search. */
  readonly upnpGateways?: readonly URL[];
  /** The NAT-PMP gateway; by default the default route's gateway, if any. */
  readonly natPmpGateway?: string;
  readonly clock?: Clock;
  readonly leaseSeconds?: number;
}

/** One gateway, whatever its protocol: map the port, delete a mapping. */
interface Forwarding {
  readonly kind: GatewayStatus['kind'];
  readonly location: string;
  /** Maps every protocol; returns the external address (if told) and the mappings made. */
  mapAll(signal: AbortSignal): Promise<{ externalIp?: string; mappings: PortMappingStatus[] }>;
  unmap(m: PortMappingStatus, signal: AbortSignal): Promise<void>;
}

interface Entry {
  readonly forwarding: Forwarding;
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
        kind: e.forwarding.kind,
        location: e.forwarding.location,
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
        for (const m of e.mappings.splice(0)) await e.forwarding.unmap(m, signal).catch(() => undefined);
      }),
    );
  }

  async #mapAll(): Promise<void> {
    const signal = this.#abort.signal;
    const [upnp, natPmp] = await Promise.all([this.#upnpForwardings(signal), this.#natPmpForwarding()]);
    if (signal.aborted) return;
    this.#entries = [...upnp, ...natPmp].map((forwarding) => ({ forwarding, mappings: [] }));
    await Promise.all(this.#entries.map((e) => this.#mapOn(e, signal)));
    this.#scheduleRefresh();
  }

  async #upnpForwardings(signal: AbortSignal): Promise<Forwarding[]> {
    let locations: readonly URL[];
    try {
      locations = this.#o.upnpGateways ?? (await searchGateways({ signal }));
      if (locations.length === 0)
        throw new NoUpnpGatewayError('no UPnP internet gateway answered the search');
    } catch (error) {
      if (!signal.aborted) this.emit('mapping:failed', { error: error as Error });
      return [];
    }
    return locations.map((l) => this.#upnp(l));
  }

  async #natPmpForwarding(): Promise<Forwarding[]> {
    const host = this.#o.natPmpGateway ?? (await defaultGateway());
    return host === undefined ? [] : [this.#natPmp(host)];
  }

  #upnp(location: URL): Forwarding {
    let gateway: UpnpGateway | undefined;
    return {
      kind: 'upnp',
      location: location.href,
      mapAll: async (signal) => {
        gateway ??= await UpnpGateway.open(location, { signal });
        const internalHost = this.#o.internalHost ?? (await localAddressTowards(gateway.host, gateway.port));
        const externalIp = await gateway.externalIp({ signal });
        const mappings: PortMappingStatus[] = [];
        for (const protocol of this.#o.protocols) {
          mappings.push(await this.#upnpAdd(gateway, protocol, internalHost, signal));
        }
        return { ...(externalIp === '' ? {} : { externalIp }), mappings };
      },
      unmap: async (m, signal) => {
        await gateway?.deletePortMapping(m, { signal });
      },
    };
  }

  async #upnpAdd(
    gateway: UpnpGateway,
    protocol: PortMappingProtocol,
    internalHost: string,
    signal: AbortSignal,
  ): Promise<PortMappingStatus> {
    const port = this.#o.port;
    const base = {
      protocol,
      externalPort: port,
      internalClient: internalHost,
      internalPort: port,
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
    return { protocol, externalPort: port, internalHost, internalPort: port, leaseSeconds };
  }

  #natPmp(host: string): Forwarding {
    const port = this.#o.port;
    return {
      kind: 'natpmp',
      location: `${host}:${NATPMP_PORT}`,
      mapAll: async (signal) => {
        const internalHost = this.#o.internalHost ?? (await localAddressTowards(host, NATPMP_PORT));
        const gateway = new NatPmpGateway(host, { localAddress: internalHost });
        const externalIp = await gateway.externalIp({ signal });
        const mappings: PortMappingStatus[] = [];
        for (const protocol of this.#o.protocols) {
          const lease = this.#o.leaseSeconds ?? PORT_MAPPING_LEASE_S;
          const granted = await gateway.map(protocol, port, lease, { signal });
          mappings.push({
            protocol,
            externalPort: granted.externalPort,
            internalHost,
            internalPort: port,
            leaseSeconds: granted.lifetimeSeconds,
          });
        }
        return { externalIp, mappings };
      },
      unmap: async (m, signal) => {
        await new NatPmpGateway(host, { localAddress: m.internalHost }).unmap(m.protocol, m.internalPort, {
          signal,
        });
      },
    };
  }

  async #mapOn(e: Entry, signal: AbortSignal): Promise<void> {
    const gateway = e.forwarding.location;
    try {
      const { externalIp, mappings } = await e.forwarding.mapAll(signal);
      if (externalIp !== undefined) e.externalIp = externalIp;
      e.mappings = mappings;
      delete e.error;
      for (const mapping of mappings) {
        this.emit('mapping:added', { gateway, mapping, ...(externalIp === undefined ? {} : { externalIp }) });
      }
    } catch (err) {
      if (signal.aborted) return;
      e.error = (err as Error).message;
      this.emit('mapping:failed', { gateway, error: err as Error });
    }
  }

  /** Renews at half the shortest lease; a gateway that failed is tried again then too. */
  #scheduleRefresh(): void {
    if (this.#abort.signal.aborted) return;
    const leases = this.#entries.flatMap((e) => e.mappings.map((m) => m.leaseSeconds).filter((s) => s > 0));
    const failed = this.#entries.some((e) => e.error !== undefined);
    if (leases.length === 0 && !failed) return;
    const lease = Math.min(...leases, this.#o.leaseSeconds ?? PORT_MAPPING_LEASE_S);
    this.#refresh = this.#clock.setTimeout(
      () => {
        this.#refresh = undefined;
        const signal = this.#abort.signal;
        this.#run = Promise.all(this.#entries.map((e) => this.#mapOn(e, signal))).then(() =>
          this.#scheduleRefresh(),
        );
      },
      Math.max((lease * 1000) / 2, MIN_RENEWAL_INTERVAL_MS),
    );
  }
}
