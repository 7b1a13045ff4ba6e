// jira.js, a Jira Cloud client that integrations use, against the server seeded with
// examples/seed.json: JIRA_USERPROPS_URL=http://... node --test (tests/clients/run.sh runs it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { Version2Client, Version3Client } from "jira.js";

const host = process.env.JIRA_USERPROPS_URL ?? "http://127.0.0.1:8080";
const BOB = "5b10ac8d82e05b22cc7d4ef5";
const ADA = "5b10a2844c20165700ede21g";

const as = (Client, email, apiToken) =>
  new Client({ host, authentication: { basic: { email, apiToken } } });

/** The status and body a refused call threw. */
async function refusal(call) {
  try {
    await call();
  } catch (error) {
    return { status: error.status ?? error.response?.status, body: error.response?.data };
  }
  assert.fail("the call was not refused");
}

for (const [version, Client] of [["3", Version3Client], ["2", Version2Client]]) {
  test(`API ${version}: a property's life through jira.js, its key sent raw`, async () => {
    const properties = as(Client, "bob@example.com", "bob-token").userProperties;
    const propertyKey = `jira.js/v${version} key`;
    await properties.setUserProperty({ accountId: BOB, propertyKey, propertyValue: { a: [1, 2] } });
    await properties.setUserProperty({ accountId: BOB, propertyKey, propertyValue: { a: 3 } });

    const read = await properties.getUserProperty({ accountId: BOB, propertyKey });
    assert.deepEqual(read, { key: propertyKey, value: { a: 3 } });
    const { keys } = await properties.getUserPropertyKeys({ accountId: BOB });
    const listed = keys.find((entry) => entry.key === propertyKey);
    const encoded = encodeURIComponent(propertyKey);
    assert.equal(listed?.self, `${host}/rest/api/${version}/user/properties/${encoded}?accountId=${BOB}`);
    assert.deepEqual(keys.map((entry) => entry.key), keys.map((entry) => entry.key).sort());

    await properties.deleteUserProperty({ accountId: BOB, propertyKey });
    const gone = await refusal(() => properties.getUserProperty({ accountId: BOB, propertyKey }));
    assert.deepEqual(gone, {
      status: 404,
      body: { errorMessages: [`The property ${propertyKey} does not exist.`], errors: {} },
    });
  });

  test(`API ${version}: another user's properties need Administer Jira`, async () => {
    const bob = as(Client, "bob@example.com", "bob-token").userProperties;
    const refused = await refusal(() => bob.getUserPropertyKeys({ accountId: ADA }));
    assert.equal(refused.status, 403);
    assert.equal(refused.body.errorMessages.length, 1);

    const ada = as(Client, "ada@example.com", "ada-token").userProperties;
    const propertyKey = `jira.js.by-admin.v${version}`;
    await ada.setUserProperty({ accountId: BOB, propertyKey, propertyValue: ["set by Ada"] });
    assert.deepEqual(await bob.getUserProperty({ accountId: BOB, propertyKey }), {
      key: propertyKey,
      value: ["set by Ada"],
    });
    await ada.deleteUserProperty({ accountId: BOB, propertyKey });
  });

  test(`API ${version}: a bare string value, which axios sends as a form, is refused 415`, async () => {
    const properties = as(Client, "bob@example.com", "bob-token").userProperties;
    const propertyKey = `jira.js.string.v${version}`;
    const refused = await refusal(() =>
      properties.setUserProperty({ accountId: BOB, propertyKey, propertyValue: "dark" }),
    );
    assert.equal(refused.status, 415);
    assert.deepEqual(refused.body.errors, {});
    const gone = await refusal(() => properties.getUserProperty({ accountId: BOB, propertyKey }));
    assert.equal(gone.status, 404, "nothing was stored");
  });

  test(`API ${version}: wrong credentials get Jira's 401`, async () => {
    const wrong = as(Client, "bob@example.com", "not-the-token").userProperties;
    const refused = await refusal(() => wrong.getUserPropertyKeys({ accountId: BOB }));
    assert.deepEqual(refused, {
      status: 401,
      body: { message: "Client must be authenticated to access this resource.", "status-code": 401 },
    });
  });
}
