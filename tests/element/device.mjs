#!/usr/bin/env node
// A clinician's device with Element Web's crypto stack (matrix-js-sdk + Rust crypto WASM), driven
// line by line from a test: it logs in (a new device, as on a new phone), joins the room (accepting
// an invitation), then reports every room event it sees, decrypted or not, as one JSON line each on
// stdout, and obeys JSON lines on stdin.
// Usage: node device.mjs --homeserver URL --user @u:hs --password PW --room '!id' [--no-join] [--verbose]
// Out:  {"ready": true, "device_id": …}   once joined (or logged in, with --no-join) and keys uploaded
//       {"event": id, "sender": …, "type": …, "decrypted": bool, "encrypted": bool, "body": …,
//        "msgtype": …, "thread_root": …, "in_reply_to": …, "replaces": …, "new_body": …, "reacts_to": …,
//        "key": …, "failure": …}   per event, again when it decrypts
//       {"sent": id, "tag": …}   after a send;  {"joined": true}  after a join command
// In:   {"send": "text", "tag": t, "reply_to": id?, "thread_root": id?}   an encrypted m.text
//       {"react": id, "key": "✋", "tag": t}   a reaction on an event
//       {"join": true}   join the room now (with --no-join)
//       {"quit": true}   log out (drops the device) and exit
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
    options: {
        homeserver: { type: "string" }, user: { type: "string" }, password: { type: "string" },
        room: { type: "string" }, "no-join": { type: "boolean", default: false },
        verbose: { type: "boolean", default: false },
    },
});
const toStderr = (...a) => process.stderr.write(a.map(String).join(" ") + "\n");
for (const m of ["log", "info", "debug", "trace", "warn", "error"]) {
    console[m] = opt.verbose ? toStderr : () => {};
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
let client;

async function until(check, everyMs = 100) {
    for (;;) {
        const v = await check();
        if (v) return v;
        await sleep(everyMs);
    }
}

async function main() {
    for (const k of ["homeserver", "user", "password", "room"]) {
        if (!opt[k]) throw new Error(`missing --${k}`);
    }
    const sdk = await import("matrix-js-sdk");
    const { logger } = await import("matrix-js-sdk/lib/logger.js");
    const { AllDevicesIsolationMode } = await import("matrix-js-sdk/lib/crypto-api/index.js");
    logger.setLevel(opt.verbose ? "debug" : "warn");

    const login = await sdk.createClient({ baseUrl: opt.homeserver }).loginRequest({
        type: "m.login.password", identifier: { type: "m.id.user", user: opt.user },
        password: opt.password, initial_device_display_name: "liaison element-device",
    });
    client = sdk.createClient({
        baseUrl: opt.homeserver, userId: login.user_id, deviceId: login.device_id, accessToken: login.access_token,
    });
    await client.initRustCrypto({ useIndexedDB: false });
    const crypto = client.getCrypto();
    crypto.globalBlacklistUnverifiedDevices = false;
    crypto.setDeviceIsolationMode(new AllDevicesIsolationMode(false));

    const report = async (ev) => {
        if (ev.getRoomId() !== opt.room) return;
        if (ev.isEncrypted()) await client.decryptEventIfNeeded(ev);
        const failed = ev.isDecryptionFailure();
        const content = failed ? {} : ev.getContent();
        const rel = ev.getWireContent()["m.relates_to"] ?? content["m.relates_to"] ?? {};
        say({
            event: ev.getId(), sender: ev.getSender(), type: ev.getType(), encrypted: ev.isEncrypted(),
            decrypted: !failed, failure: failed ? String(ev.decryptionFailureReason) : null,
            body: content.body ?? null, msgtype: content.msgtype ?? null,
            thread_root: rel.rel_type === "m.thread" ? rel.event_id : null,
            in_reply_to: rel["m.in_reply_to"]?.event_id ?? null, ts: ev.getTs(),
            replaces: rel.rel_type === "m.replace" ? rel.event_id : null,
            new_body: content["m.new_content"]?.body ?? null,
            reacts_to: rel.rel_type === "m.annotation" ? rel.event_id : null, key: rel.key ?? null,
        });
    };
    client.on(sdk.RoomEvent.Timeline, (ev) => report(ev).catch(() => {}));
    client.on(sdk.MatrixEventEvent.Decrypted, (ev) => report(ev).catch(() => {}));

    const synced = new Promise((r) => client.on(sdk.ClientEvent.Sync, (s) => s === "PREPARED" && r()));
    await client.startClient({ initialSyncLimit: 20 });
    await synced;
    await until(async () => {
        const res = await client.downloadKeysForUsers([login.user_id]);
        return res.device_keys?.[login.user_id]?.[login.device_id];
    });

    const join = async () => {
        if (client.getRoom(opt.room)?.getMyMembership() !== "join") await client.joinRoom(opt.room);
        await until(() => client.getRoom(opt.room)?.getMyMembership() === "join");
    };
    if (!opt["no-join"]) await join();
    say({ ready: true, device_id: login.device_id, user_id: login.user_id });

    for await (const line of createInterface({ input: process.stdin })) {
        if (!line.trim()) continue;
        const cmd = JSON.parse(line);
        if (cmd.quit) break;
        if (cmd.join) {
            await join();
            say({ joined: true });
            continue;
        }
        if (cmd.react) {   // as Element does: an annotation, which matrix-js-sdk sends unencrypted
            const { event_id } = await client.sendEvent(opt.room, "m.reaction", {
                "m.relates_to": { rel_type: "m.annotation", event_id: cmd.react, key: cmd.key } });
            say({ sent: event_id, tag: cmd.tag ?? null });
            continue;
        }
        if (cmd.send !== undefined) {
            const content = { msgtype: "m.text", body: cmd.send };
            if (cmd.thread_root) {
                content["m.relates_to"] = { rel_type: "m.thread", event_id: cmd.thread_root, is_falling_back: true,
                    "m.in_reply_to": { event_id: cmd.reply_to ?? cmd.thread_root } };
            } else if (cmd.reply_to) {
                content["m.relates_to"] = { "m.in_reply_to": { event_id: cmd.reply_to } };
            }
            const { event_id } = await client.sendEvent(opt.room, "m.room.message", content);
            say({ sent: event_id, tag: cmd.tag ?? null });
        }
    }
    client.stopClient();
    await Promise.race([client.logout(true).catch(() => {}), sleep(3000)]);
    process.exit(0);
}

main().catch(async (e) => {
    process.stderr.write(`device: ${e?.message ?? e}\n`);
    if (client) client.stopClient();
    process.exit(1);
});
