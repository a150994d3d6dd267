// Numbers as people read them. Sizes use binary units, like the rest of the service.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  let i = 0;
  while (Math.abs(n) >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}

export function rate(bytesPerSecond) {
  return `${bytes(bytesPerSecond)}/s`;
}

export function percent(fraction) {
  return `${(100 * fraction).toFixed(fraction > 0 && fraction < 0.001 ? 2 : 1)}%`;
}

/** A wall-clock time in ms since the epoch, or a dash. */
export function when(ms) {
  return ms === undefined ? '–' : new Date(ms).toLocaleString();
}
