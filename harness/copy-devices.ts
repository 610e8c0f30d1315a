// The scenario option that gives every storage system of a topology a copy device (¶0168, claim 13):
// `runScenario(name, { copyDevices: true })`, `rclab run <scenario> --copy-devices [MBps[:queueDepth[:setupUs]]]`.
// The device itself is hardware (hardware/copy-device.ts); the firmware does not change.

import { DEFAULT_COPY_DEVICE, validateCopyDevice, type CopyDeviceConfig } from '../hardware/copy-device.ts';
import type { Topology } from './topology.ts';

/** `true`: every system gets DEFAULT_COPY_DEVICE; an object: every system gets that device; false/undefined: none. */
export type CopyDevicesOption = boolean | CopyDeviceConfig;

/** The device `option` asks for (null: none); a bad value is refused naming `optionName`. */
export function copyDeviceOf(option: unknown, optionName = 'copyDevices'): Required<CopyDeviceConfig> | null {
  if (option === undefined || option === false) return null;
  if (option === true) return { ...DEFAULT_COPY_DEVICE };
  if (!option || typeof option !== 'object') {
    throw new Error(`${optionName} must be true, false or {throughputMBps, queueDepth, setupUs?}, not ${JSON.stringify(option)}`);
  }
  return validateCopyDevice(option, optionName);
}

/**
 * Gives every storage system of `t` the copy device `option` asks for (in place). A topology whose systems already
 * have copy devices of their own is refused rather than silently overridden, naming the option and the system.
 */
export function applyCopyDevices(t: Topology, option: unknown, optionName = 'copyDevices'): void {
  const device = copyDeviceOf(option, optionName);
  if (!device) return;
  const own = t.systems.find((s) => s.copyDevice !== undefined);
  if (own) throw new Error(`${optionName}: storage system ${own.name} of topology '${t.name}' already has a copy device of its own (${JSON.stringify(own.copyDevice)}); refusing to override it`);
  for (const s of t.systems) s.copyDevice = { ...device };
}

/** `--copy-devices` value: MBps[:queueDepth[:setupUs]], the rest defaults (DEFAULT_COPY_DEVICE). */
export function parseCopyDevicesArg(v: string): Required<CopyDeviceConfig> {
  const parts = v.split(':');
  const nums = parts.map((x) => (x.trim() === '' ? NaN : Number(x)));
  if (parts.length > 3 || nums.some((n) => !Number.isFinite(n))) {
    throw new Error(`--copy-devices takes MBps[:queueDepth[:setupUs]] (e.g. 200 or 200:32:5), not '${v}'`);
  }
  const [throughputMBps, queueDepth = DEFAULT_COPY_DEVICE.queueDepth, setupUs = DEFAULT_COPY_DEVICE.setupUs] = nums as [number, number?, number?];
  return validateCopyDevice({ throughputMBps, queueDepth, setupUs }, '--copy-devices');
}

/** The `rclab run` arguments that ask for `option` again (replay commands); empty when none. */
export function copyDevicesArgs(option: CopyDevicesOption | undefined): string {
  const d = copyDeviceOf(option);
  if (!d) return '';
  if (option === true) return ' --copy-devices';
  return ` --copy-devices ${d.throughputMBps}:${d.queueDepth}:${d.setupUs}`;
}
