/**
 * Check-digit algorithms used by the detectors to tell real identifiers from look-alikes.
 * Inputs are ASCII strings already stripped of separators.
 */

/** True when `digits` (ASCII digits only) passes the Luhn mod-10 check used by payment cards. */
export function isLuhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/**
 * True when `compact` (an IBAN in upper case without spaces) has a valid ISO 13616 mod-97
 * checksum and a plausible length (15 to 34 characters).
 */
export function isIbanValid(compact: string): boolean {
  if (compact.length < 15 || compact.length > 34) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      remainder = (remainder * 10 + (c - 48)) % 97;
    } else if (c >= 65 && c <= 90) {
      // Letters count as two digits: A = 10 ... Z = 35.
      remainder = (remainder * 100 + (c - 55)) % 97;
    } else {
      return false;
    }
  }
  return remainder === 1;
}

/**
 * True when the parts of an `AAA-GG-SSSS` number form an SSN the SSA could have issued:
 * area not 000, 666 or 9xx; group not 00; serial not 0000.
 */
export function isSsnValid(area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000';
}
