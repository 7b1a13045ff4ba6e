// The console's client: keeps the admin token for this tab, loads the server's views into the
// page, sends forms with the token, and refreshes the parts that are live.
"use strict";

const TOKEN_KEY = "jira-userprops.admin-token";
const VIEWS = "/_admin/ui/views";
const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signIn = document.getElementById("sign-in");
const signInError = document.getElementById("sign-in-error");
let timers = [];
let loading = 0;

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

// `keepToken`: the token was not judged (too many failed sign-ins), so it stays for the next try.
function showSignIn(message, keepToken) {
  if (!keepToken) sessionStorage.removeItem(TOKEN_KEY);
  // Whatever was loading or being sent is not shown over the sign-in form.
  loading++;
  stopPolling();
  view.replaceChildren();
  view.hidden = true;
  nav.hidden = true;
  signIn.hidden = false;
  signInError.textContent = message || "";
  document.getElementById("admin-token").focus();
}

// Every request carries the token as a header; a refusal means signing in again.
async function send(url, options) {
  const response = await fetch(url, {
    ...options,
    headers: { Authorization: "Bearer " + token(), Accept: "text/html" },
    cache: "no-store",
    credentials: "omit",
  });
  const retryAfter = response.headers.get("Retry-After");
  if (response.status === 401 && retryAfter) {
    showSignIn("Too many failed sign-ins from this address: try again in " + retryAfter +
      " seconds.", true);
    return null;
  }
  if (response.status === 401 || response.status === 403) {
    showSignIn("The admin token was not accepted.");
    return null;
  }
  return response;
}

function currentView() {
  const view = location.hash.startsWith("#/") ? location.hash.slice(1) : "/sites";
  // A view of the console only: an address that walks out of it (`..`, `%2e%2e`) would send the
  // admin token elsewhere on the server; the sites are shown instead.
  const resolved = new URL(VIEWS + view, location.origin);
  return resolved.pathname.startsWith(VIEWS + "/") ? view : "/sites";
}

async function load() {
  if (!token()) {
    showSignIn();
    return;
  }
  const ticket = ++loading;
  try {
    const response = await send(VIEWS + currentView());
    if (!response) return;
    const html = await viewOf(response);
    // Signed out, or another view asked for, meanwhile: that one is shown.
    if (ticket === loading && token()) show(html);
  } catch (error) {
    if (ticket === loading && token()) {
      show('<p class="notice error" role="alert">The server did not answer. Is it running?</p>');
    }
  }
}

// A view's markup. Any other answer gets a notice, not raw JSON: "No such page" for a 404, else
// its status and the server's message.
async function viewOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (type.startsWith("text/html")) return response.text();
  let title = "No such page";
  let detail = "";
  if (response.status !== 404) {
    title = "The server answered " + response.status;
    try {
      const body = await response.json();
      detail = (body.errorMessages && body.errorMessages[0]) || body.message || "";
    } catch (error) {
      // Not JSON: the status says it.
    }
  }
  const notice = document.createElement("section");
  notice.className = "notice error";
  notice.setAttribute("role", "alert");
  const heading = document.createElement("h1");
  heading.tabIndex = -1;
  heading.textContent = title;
  notice.append(heading);
  if (detail) {
    const message = document.createElement("p");
    message.textContent = detail;
    notice.append(message);
  }
  const back = document.createElement("p");
  back.innerHTML = '<a href="#/sites">Back to the sites</a>';
  notice.append(back);
  return notice.outerHTML;
}

// The markup is the server's, with every value escaped there; the page's policy runs no
// inline script whatever it holds.
function show(html) {
  stopPolling();
  signIn.hidden = true;
  nav.hidden = false;
  view.hidden = false;
  view.innerHTML = html;
  startPolling();
  const heading = view.querySelector("h1");
  (heading || view).focus({ preventScroll: false });
}

function stopPolling() {
  timers.forEach(clearInterval);
  timers = [];
}

function startPolling() {
  view.querySelectorAll("[data-poll]").forEach((element) => {
    let busy = false;
    timers.push(setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const response = await send(element.dataset.poll);
        if (response && response.ok) element.innerHTML = await response.text();
      } catch (error) {
        // The next tick tries again.
      } finally {
        busy = false;
      }
    }, 1000));
  });
}

async function submit(form, submitter) {
  const body = new URLSearchParams(new FormData(form, submitter));
  // Attributes, not properties: a field named "method" or "action" would shadow those.
  if ((form.getAttribute("method") || "get").toLowerCase() === "get") {
    for (const [name, value] of [...body]) {
      if (value === "") body.delete(name);
    }
    const query = body.toString();
    location.hash = "#" + form.dataset.view + (query ? "?" + query : "");
    return;
  }
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const buttons = form.querySelectorAll("button");
  buttons.forEach((button) => { button.disabled = true; });
  try {
    const ticket = ++loading;
    const response = await send(form.getAttribute("action"), { method: "POST", body });
    if (!response) return;
    const html = await viewOf(response);
    // Signed out, or another view asked for, while this was sent: that one is shown.
    if (ticket !== loading || !token()) return;
    const shown = response.headers.get("X-Console-View");
    if (shown && "#" + shown !== location.hash) {
      history.pushState(null, "", "#" + shown);
    }
    show(html);
    const invalid = view.querySelector("[aria-invalid=true], .field .error");
    if (invalid) invalid.scrollIntoView({ block: "center" });
  } catch (error) {
    buttons.forEach((button) => { button.disabled = false; });
    const notice = document.createElement("p");
    notice.className = "notice error";
    notice.setAttribute("role", "alert");
    notice.textContent = "The server did not answer. Is it running?";
    view.prepend(notice);
  }
}

document.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  if (form.id === "sign-in-form") {
    const input = document.getElementById("admin-token");
    sessionStorage.setItem(TOKEN_KEY, input.value);
    input.value = "";
    load();
  } else {
    submit(form, event.submitter);
  }
});

document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const text = document.getElementById(button.dataset.copy).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch (error) {
    const range = document.createRange();
    range.selectNodeContents(document.getElementById(button.dataset.copy));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  button.textContent = "Copied";
});

document.getElementById("sign-out").addEventListener("click", () => showSignIn("Signed out."));
window.addEventListener("hashchange", load);
load();
