// A Signal-protocol device for the end-to-end encryption tests, on libsignal's own
// client library (@signalapp/libsignal-client, the one Signal's apps use): real key
// generation, real PQXDH/X3DH session set-up from a fetched bundle, real Double Ratchet
// encryption. Its private keys and sessions live only in this process, in memory; the
// server sees the public halves and ciphertext.

import * as signal from "@signalapp/libsignal-client";

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const bytes = (text) => new Uint8Array(Buffer.from(text, "base64"));

/** The in-memory stores one device needs (libsignal asks for them by interface). */
class Stores {
  constructor(identity, registrationId) {
    const sessions = new Map();
    const identities = new Map();
    const prekeys = new Map();
    const signed = new Map();
    const kyber = new Map();
    const name = (address) => `${address.name()}.${address.deviceId()}`;
    this.session = new (class extends signal.SessionStore {
      async saveSession(address, record) {
        sessions.set(name(address), record.serialize());
      }
      async getSession(address) {
        const found = sessions.get(name(address));
        return found ? signal.SessionRecord.deserialize(found) : null;
      }
      async getExistingSessions(addresses) {
        return addresses.map((a) => signal.SessionRecord.deserialize(sessions.get(name(a))));
      }
    })();
    this.identity = new (class extends signal.IdentityKeyStore {
      async getIdentityKey() {
        return identity;
      }
      async getLocalRegistrationId() {
        return registrationId;
      }
      async saveIdentity(address, key) {
        const known = identities.get(name(address));
        identities.set(name(address), key);
        return known && !known.equals(key) ? signal.IdentityChange.ReplacedExisting : signal.IdentityChange.NewOrUnchanged;
      }
      async isTrustedIdentity(address, key) {
        const known = identities.get(name(address));
        return !known || known.equals(key);
      }
      async getIdentity(address) {
        return identities.get(name(address)) ?? null;
      }
    })();
    this.prekeys = new (class extends signal.PreKeyStore {
      async savePreKey(id, record) {
        prekeys.set(id, record);
      }
      async getPreKey(id) {
        if (!prekeys.has(id)) throw new Error(`no prekey ${id}`);
        return prekeys.get(id);
      }
      async removePreKey(id) {
        prekeys.delete(id);
      }
    })();
    this.signed = new (class extends signal.SignedPreKeyStore {
      async saveSignedPreKey(id, record) {
        signed.set(id, record);
      }
      async getSignedPreKey(id) {
        return signed.get(id);
      }
    })();
    this.kyber = new (class extends signal.KyberPreKeyStore {
      async saveKyberPreKey(id, record) {
        kyber.set(id, record);
      }
      async getKyberPreKey(id) {
        return kyber.get(id);
      }
      async markKyberPreKeyUsed() {}
    })();
  }
}

/** One device of one user: `userId` as the server knows it, `deviceId` 1–127. */
export class SignalDevice {
  #identity = signal.PrivateKey.generate();
  #nextPrekeyId = 1;

  constructor(userId, deviceId) {
    this.userId = userId;
    this.deviceId = deviceId;
    this.registrationId = 1 + Math.floor(Math.random() * 16380);
    this.address = signal.ProtocolAddress.new(String(userId), deviceId);
    this.stores = new Stores(this.#identity, this.registrationId);
  }

  /** The identity public key, as published (base64). */
  get identityKey() {
    return b64(this.#identity.getPublicKey().serialize());
  }

  /** `count` fresh one-time prekeys, kept here, as the directory takes them. */
  async oneTimePrekeys(count) {
    const published = [];
    for (let i = 0; i < count; i++) {
      const id = this.#nextPrekeyId++;
      const key = signal.PrivateKey.generate();
      await this.stores.prekeys.savePreKey(id, signal.PreKeyRecord.new(id, key.getPublicKey(), key));
      published.push({ key_id: id, public_key: b64(key.getPublicKey().serialize()) });
    }
    return published;
  }

  /** The body of `PUT /api/keys/devices/{device_id}` with `count` one-time prekeys. */
  async publication(count) {
    const signedKey = signal.PrivateKey.generate();
    const signedPublic = signedKey.getPublicKey().serialize();
    const signedSignature = this.#identity.sign(signedPublic);
    await this.stores.signed.saveSignedPreKey(
      1,
      signal.SignedPreKeyRecord.new(1, Date.now(), signedKey.getPublicKey(), signedKey, signedSignature),
    );
    const kem = signal.KEMKeyPair.generate();
    const kemPublic = kem.getPublicKey().serialize();
    const kemSignature = this.#identity.sign(kemPublic);
    await this.stores.kyber.saveKyberPreKey(1, signal.KyberPreKeyRecord.new(1, Date.now(), kem, kemSignature));
    return {
      registration_id: this.registrationId,
      identity_key: this.identityKey,
      signed_prekey: { key_id: 1, public_key: b64(signedPublic), signature: b64(signedSignature) },
      kyber_prekey: { key_id: 1, public_key: b64(kemPublic), signature: b64(kemSignature) },
      one_time_prekeys: await this.oneTimePrekeys(count),
    };
  }

  /** Starts a session with a device from its bundle, as fetched from the directory. */
  async startSession(userId, bundle) {
    const address = signal.ProtocolAddress.new(String(userId), bundle.device_id);
    const otk = bundle.one_time_prekey;
    const prekeyBundle = signal.PreKeyBundle.new(
      bundle.registration_id,
      bundle.device_id,
      otk ? otk.key_id : null,
      otk ? signal.PublicKey.deserialize(bytes(otk.public_key)) : null,
      bundle.signed_prekey.key_id,
      signal.PublicKey.deserialize(bytes(bundle.signed_prekey.public_key)),
      bytes(bundle.signed_prekey.signature),
      signal.PublicKey.deserialize(bytes(bundle.identity_key)),
      bundle.kyber_prekey.key_id,
      signal.KEMPublicKey.deserialize(bytes(bundle.kyber_prekey.public_key)),
      bytes(bundle.kyber_prekey.signature),
    );
    await signal.processPreKeyBundle(prekeyBundle, address, this.address, this.stores.session, this.stores.identity);
  }

  /** `send_message`'s `encrypted`: `plaintext` for each `[userId, deviceId]` (sessions must exist). */
  async encrypt(plaintext, devices) {
    const envelopes = [];
    for (const [userId, deviceId] of devices) envelopes.push(await this.envelopeFor(userId, deviceId, plaintext));
    return { sender_device_id: this.deviceId, envelopes };
  }

  /** An envelope of `plaintext` for device `deviceId` of `userId` (a session must exist). */
  async envelopeFor(userId, deviceId, plaintext) {
    const address = signal.ProtocolAddress.new(String(userId), deviceId);
    const message = await signal.signalEncrypt(
      new Uint8Array(Buffer.from(plaintext, "utf8")),
      address,
      this.address,
      this.stores.session,
      this.stores.identity,
    );
    return { user_id: userId, device_id: deviceId, type: message.type(), body: b64(message.serialize()) };
  }

  /** This device's envelope of a delivered message, decrypted; throws if there is none. */
  async open(message) {
    const mine = message.envelopes?.find((e) => e.user_id === this.userId && e.device_id === this.deviceId);
    if (!mine) throw new Error(`no envelope for ${this.userId}.${this.deviceId} in ${JSON.stringify(message)}`);
    return this.decrypt([message.from_user_id ?? message.sender_id, message.sender_device_id], mine);
  }

  /** Decrypts an envelope sent by device `from` (a ProtocolAddress or [user, device]). */
  async decrypt(from, envelope) {
    const address = Array.isArray(from) ? signal.ProtocolAddress.new(String(from[0]), from[1]) : from;
    const body = bytes(envelope.body);
    let plain;
    if (envelope.type === signal.CiphertextMessageType.PreKey) {
      plain = await signal.signalDecryptPreKey(
        signal.PreKeySignalMessage.deserialize(body),
        address,
        this.address,
        this.stores.session,
        this.stores.identity,
        this.stores.prekeys,
        this.stores.signed,
        this.stores.kyber,
      );
    } else {
      plain = await signal.signalDecrypt(
        signal.SignalMessage.deserialize(body),
        address,
        this.address,
        this.stores.session,
        this.stores.identity,
      );
    }
    return Buffer.from(plain).toString("utf8");
  }

  /** Whether this device still holds the private half of one-time prekey `id`. */
  async holdsPrekey(id) {
    try {
      await this.stores.prekeys.getPreKey(id);
      return true;
    } catch {
      return false;
    }
  }
}

/** libsignal's message types, as envelopes carry them. */
export const MessageType = { Signal: signal.CiphertextMessageType.Whisper, PreKey: signal.CiphertextMessageType.PreKey };
