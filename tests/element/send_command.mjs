#!/usr/bin/env node
// Acts as a clinician using Element Web's crypto stack (matrix-js-sdk + Rust crypto WASM):
// logs in (new device), joins an E2EE room, sends an encrypted command, waits for the
// bot's reply (m.in_reply_to the command), decrypts it and prints ONE JSON line on stdout.
// Usage: node send_command.mjs --homeserver URL --user @u:hs --password PW --room '!id'
//        --command '!aide' [--expect-sender @bot:hs] [--timeout 60] [--resend-after 10] [--verbose]
// With no reply after --resend-after seconds the command is sent again (3 sends at most;
// "attempts" in the JSON): a bot may miss a brand-new device's keys at first.
//
// File mode: add --file PATH [--filename NAME] [--mimetype TYPE] [--omit-filename]. The command
// (default "!aide") is sent first, as above, so that the bot surely reads this new device; then
// the file is encrypted as Element Web does (encrypted attachment v2: AES-256-CTR with WebCrypto),
// the ciphertext is uploaded, an m.file (m.image for image/*) event is sent, and the JSON line is
// about the file's event and the bot's reply to it (no resend for the file).
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
    options: {
        homeserver: { type: "string" }, user: { type: "string" }, password: { type: "string" },
        room: { type: "string" }, command: { type: "string" }, "expect-sender": { type: "string" },
        timeout: { type: "string", default: "60" }, "resend-after": { type: "string", default: "10" },
        verbose: { type: "boolean", default: false },
        file: { type: "string" }, filename: { type: "string" }, mimetype: { type: "string" },
        "omit-filename": { type: "boolean", default: false }, // Element Web sends `body` only
    },
});
if (opt.file && opt.command === undefined) opt.command = "!aide";
// The SDK and the WASM crypto's tracing print through console.* (log/info/debug would go
// to stdout in node): send them to stderr, and only with --verbose.
const toStderr = (...a) => process.stderr.write(a.map(String).join(" ") + "\n");
for (const m of ["log", "info", "debug", "trace", "warn", "error"]) {
    console[m] = opt.verbose ? toStderr : () => {};
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let client; // set once logged in, so that a failure still drops the throw-away device
let stage = "starting";

async function fail(msg) {
    process.stderr.write(`send_command: ${msg}\n`);
    if (client) {
        client.stopClient();
        await Promise.race([client.logout(true).catch(() => {}), sleep(3000)]);
    }
    process.exit(1);
}

async function until(what, check, everyMs = 250) {
    stage = `waiting for ${what}`;
    for (;;) {
        const v = await check();
        if (v) return v;
        await sleep(everyMs);
    }
}

async function main() {
    for (const k of ["homeserver", "user", "password", "room", "command"]) {
        if (!opt[k]) throw new Error(`missing --${k}`);
    }
    const sdk = await import("matrix-js-sdk");
    const { logger } = await import("matrix-js-sdk/lib/logger.js");
    const { AllDevicesIsolationMode } = await import("matrix-js-sdk/lib/crypto-api/index.js");
    logger.setLevel(opt.verbose ? "debug" : "warn");

    // 1. Password login: a fresh device every run.
    stage = "logging in";
    const login = await sdk.createClient({ baseUrl: opt.homeserver }).loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: opt.user },
        password: opt.password,
        initial_device_display_name: "liaison element-test",
    });
    client = sdk.createClient({
        baseUrl: opt.homeserver, userId: login.user_id, deviceId: login.device_id,
        accessToken: login.access_token,
    });

    // 2. Rust crypto, in memory; encrypt to unverified devices too (Element's default).
    stage = "starting crypto";
    await client.initRustCrypto({ useIndexedDB: false });
    const crypto = client.getCrypto();
    crypto.globalBlacklistUnverifiedDevices = false;
    crypto.setDeviceIsolationMode(new AllDevicesIsolationMode(false));

    // Replies are recognised on arrival, or later when their room key arrives (Decrypted), and
    // kept by the event they answer (a reply may come before our send returns its event id).
    const sent = new Set(); // the event ids we sent (one per attempt)
    const noted = new Set();
    const replies = new Map(); // in_reply_to event id -> { ev, content, inReplyTo }
    async function consider(ev) {
        if (ev.getRoomId() !== opt.room || ev.getSender() === login.user_id) return;
        if (opt["expect-sender"] && ev.getSender() !== opt["expect-sender"]) return;
        if (ev.isEncrypted()) await client.decryptEventIfNeeded(ev);
        if (ev.isDecryptionFailure()) { // after our first send: worth a note (no --verbose needed)
            if (sent.size && !noted.has(ev.getId())) {
                noted.add(ev.getId());
                process.stderr.write(`send_command: note: ${ev.getId()} from ${ev.getSender()}`
                    + ` is not decryptable (yet): ${ev.decryptionFailureReason}\n`);
            }
            return;
        }
        if (ev.getType() !== "m.room.message") return;
        const content = ev.getContent();
        const rel = content["m.relates_to"] ?? ev.getWireContent()["m.relates_to"];
        const inReplyTo = rel?.["m.in_reply_to"]?.event_id;
        if (inReplyTo && !replies.has(inReplyTo)) replies.set(inReplyTo, { ev, content, inReplyTo });
    }
    // The first reply to one of `ids`, or null after `withinMs`.
    async function replyTo(ids, withinMs = Infinity) {
        const end = Date.now() + withinMs;
        for (;;) {
            for (const id of ids) if (replies.has(id)) return replies.get(id);
            if (Date.now() >= end) return null;
            await sleep(100);
        }
    }
    client.on(sdk.RoomEvent.Timeline, (ev) => consider(ev).catch(() => {}));
    client.on(sdk.MatrixEventEvent.Decrypted, (ev) => consider(ev).catch(() => {}));

    stage = "first sync";
    const synced = new Promise((r) => client.on(sdk.ClientEvent.Sync, (s) => s === "PREPARED" && r()));
    await client.startClient({ initialSyncLimit: 1 });
    await synced;

    // 3. Our device keys must be on the server before the bot can encrypt its reply to us.
    await until("our device keys to be uploaded", async () => {
        const res = await client.downloadKeysForUsers([login.user_id]); // raw /keys/query
        return res.device_keys?.[login.user_id]?.[login.device_id];
    });

    // 4. Join (accepts a pending invite too), then wait until sync shows us joined.
    stage = "joining the room";
    if (client.getRoom(opt.room)?.getMyMembership() !== "join") await client.joinRoom(opt.room);
    const room = await until("the joined room in sync", () => {
        const r = client.getRoom(opt.room);
        return r?.getMyMembership() === "join" && r;
    });
    stage = "checking the room";
    await room.loadMembersIfNeeded();
    if (!(await crypto.isEncryptionEnabledInRoom(opt.room))) {
        throw new Error(`room ${opt.room} is not end-to-end encrypted`);
    }
    if (opt["expect-sender"]) {
        const devices = await crypto.getUserDeviceInfo([opt["expect-sender"]], true);
        if (!devices.get(opt["expect-sender"])?.size) {
            throw new Error(`${opt["expect-sender"]} has no device with published keys`);
        }
    }

    // 5. Send the command (the SDK encrypts it); resend only if no reply came in time.
    const resendAfterMs = Number(opt["resend-after"]) * 1000;
    const maxAttempts = resendAfterMs > 0 ? 3 : 1; // --resend-after 0: never resend
    const commandIds = [];
    let reply = null;
    let attempts = 0;
    while (!reply && attempts < maxAttempts) {
        attempts += 1;
        stage = `sending the command (attempt ${attempts})`;
        const { event_id } = await client.sendEvent(opt.room, "m.room.message", {
            msgtype: "m.text", body: opt.command,
        });
        sent.add(event_id);
        commandIds.push(event_id);
        stage = `waiting for a reply to ${commandIds.join(", ")} (attempt ${attempts})`;
        // the last attempt waits until --timeout
        reply = await replyTo(commandIds, attempts === maxAttempts ? Infinity : resendAfterMs);
    }
    const summary = ({ ev, content, inReplyTo }) => {
        const sentEv = room.findEventById(inReplyTo);
        return {
            sent_event_id: inReplyTo,
            sent_encrypted: sentEv ? sentEv.isEncrypted() : null,
            reply_event_id: ev.getId(),
            sender: ev.getSender(),
            encrypted: ev.isEncrypted(), // was it m.room.encrypted on the wire
            body: content.body ?? null,
            format: content.format ?? null,
            formatted_body: content.formatted_body ?? null,
            in_reply_to: inReplyTo,
        };
    };

    if (!opt.file) {
        process.stdout.write(JSON.stringify({ ...summary(reply), attempts }) + "\n");
    } else {
        // 5b. The file, as Element Web's ContentMessages.uploadFile does it in an encrypted room:
        // encrypt in memory, upload the ciphertext as an anonymous octet-stream, send the event.
        stage = "encrypting the file";
        const plain = new Uint8Array(await readFile(opt.file));
        const name = opt.filename ?? basename(opt.file);
        const mimetype = opt.mimetype ?? "application/octet-stream";
        const { data, info } = await encryptAttachment(plain);
        stage = "uploading the file";
        const { content_uri: url } = await client.uploadContent(new Blob([data]), {
            includeFilename: false, type: "application/octet-stream",
        });
        const content = {
            msgtype: mimetype.startsWith("image/") ? "m.image" : "m.file",
            body: name,
            ...(opt["omit-filename"] ? {} : { filename: name }),
            info: { mimetype, size: plain.byteLength },
            "m.mentions": {},
            file: { ...info, url },
        };
        stage = "sending the file's event";
        const { event_id } = await client.sendEvent(opt.room, "m.room.message", content);
        sent.add(event_id);
        stage = `waiting for a reply to the file ${event_id}`;
        const fileReply = await replyTo([event_id]); // until --timeout
        process.stdout.write(JSON.stringify({
            ...summary(fileReply),
            msgtype: content.msgtype,
            filename: name,
            mimetype,
            size: plain.byteLength,
            sha256: hex(await globalThis.crypto.subtle.digest("SHA-256", plain)), // of the plaintext
            file: content.file, // url, key (JWK), iv, hashes.sha256 (of the ciphertext), v
            command_event_id: reply.inReplyTo,
            command_reply_body: reply.content.body ?? null,
            attempts, // of the command
        }) + "\n");
    }

    // 6. Clean up: stop syncing and drop the throw-away device.
    client.stopClient();
    await Promise.race([client.logout(true).catch(() => {}), sleep(3000)]);
    process.exit(0);
}

// Matrix encrypted attachment, version 2 (what matrix-encrypt-attachment does for Element Web):
// AES-256-CTR, a random 8-byte nonce followed by an 8-byte block counter starting at 0 (the IV's
// last 8 bytes are zero, the counter is 64 bits), the key exported as a JWK (k: unpadded
// base64url), the IV and the ciphertext's SHA-256 as unpadded standard base64.
async function encryptAttachment(plain) {
    const { subtle } = globalThis.crypto;
    const iv = new Uint8Array(16);
    globalThis.crypto.getRandomValues(iv.subarray(0, 8));
    const key = await subtle.generateKey({ name: "AES-CTR", length: 256 }, true, ["encrypt", "decrypt"]);
    const jwk = await subtle.exportKey("jwk", key);
    const data = new Uint8Array(await subtle.encrypt({ name: "AES-CTR", counter: iv, length: 64 }, key, plain));
    const digest = await subtle.digest("SHA-256", data);
    return {
        data,
        info: {
            v: "v2",
            key: { kty: jwk.kty, key_ops: jwk.key_ops, alg: jwk.alg, k: jwk.k, ext: jwk.ext },
            iv: unpaddedBase64(iv),
            hashes: { sha256: unpaddedBase64(digest) },
        },
    };
}
const unpaddedBase64 = (bytes) => Buffer.from(bytes).toString("base64").replace(/=+$/, "");
const hex = (bytes) => Buffer.from(bytes).toString("hex");

setTimeout(() => fail(`timed out after ${opt.timeout}s (${stage})`), Number(opt.timeout) * 1000);
main().catch((e) => fail(`${stage}: ${e?.message ?? e}`));
