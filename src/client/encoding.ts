// Standard base64 with padding (README, "API reference", conventions), without Node's Buffer so a browser can run it.
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + '==';
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + '=';
  }
  return out;
}

/** SHA-256 through WebCrypto: one native call over the whole buffer (WebCrypto has no streaming digest). */
export async function sha256Base64(data: Uint8Array | ArrayBuffer): Promise<string> {
  // A copy-free view is fine: digest reads the bytes before resolving.
  return toBase64(new Uint8Array(await crypto.subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer> | ArrayBuffer)));
}
