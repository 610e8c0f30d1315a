// Errors raised by the emulated hardware. Distinct classes so the firmware can map them to
// different IoStatus values ('out-of-range' / 'unknown-lvol' versus 'medium-error').

/** Bad LVOL, LBA out of range, or a length that is not whole blocks. */
export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

/** The drives behind an LVOL have failed. */
export class DiskError extends Error {
  constructor(message: string, readonly lvol?: number) {
    super(message);
    this.name = 'DiskError';
  }
}
