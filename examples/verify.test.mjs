// Verifying what a client sent: exactly one PUT of key "theme" for Bob. Run against a server
// started with `--seed examples/seed.json`: JIRA_USERPROPS_URL=... ADMIN_TOKEN=... node --test
import { test } from "node:test";
import assert from "node:assert/strict";

const BASE = process.env.JIRA_USERPROPS_URL ?? "http://127.0.0.1:8080";
const ADMIN = {
  Authorization: `Bearer ${process.env.ADMIN_TOKEN ?? "admin-secret"}`,
  "Content-Type": "application/json",
};
const BOB = "5b10ac8d82e05b22cc7d4ef5";

// The code under test: saves a user's theme through the Jira API.
async function saveTheme(accountId, mode) {
  const credentials = Buffer.from("bob@example.com:bob-token").toString("base64");
  const answer = await fetch(
    `${BASE}/rest/api/3/user/properties/theme?accountId=${accountId}`,
    {
      method: "PUT",
      headers: { Authorization: `Basic ${credentials}`, "Content-Type": "application/json" },
      body: JSON.stringify({ mode }),
    },
  );
  assert.ok(answer.ok, `PUT answered ${answer.status}`);
}

test("the integration saves Bob's theme once", async () => {
  await fetch(`${BASE}/_admin/requests`, { method: "DELETE", headers: ADMIN });

  await saveTheme(BOB, "dark");

  const matcher = { method: "PUT", key: "theme", accountId: BOB };
  const answer = await fetch(`${BASE}/_admin/requests/count`, {
    method: "POST", headers: ADMIN, body: JSON.stringify(matcher),
  });
  assert.deepEqual(await answer.json(), { count: 1 });
});
