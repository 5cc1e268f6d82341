// The account dashboard: plain JavaScript over the JSON API (session cookie + X-XSRF-TOKEN).
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const api = "/" + document.body.dataset.path;
  const $ = (id) => document.getElementById(id);

  async function call(method, path, body) {
    const response = await fetch(api + path, {
      method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json", "X-XSRF-TOKEN": csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const first = data.errors ? Object.values(data.errors)[0][0] : data.message;
      throw new Error(first || "Request failed (" + response.status + ")");
    }
    return data;
  }

  function showError(error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }

  function cell(row, text, code) {
    const td = document.createElement("td");
    if (code) {
      const c = document.createElement("code");
      c.textContent = text;
      td.appendChild(c);
    } else {
      td.textContent = text;
    }
    row.appendChild(td);
    return td;
  }

  function button(td, label, cls, onClick) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-small " + cls;
    b.textContent = label;
    b.addEventListener("click", () => onClick().catch(showError));
    td.appendChild(b);
    return b;
  }

  const day = (iso) => new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" });

  async function loadClients() {
    const clients = await call("GET", "/clients");
    const body = $("clients");
    body.replaceChildren();
    if (clients.length === 0) {
      const row = body.insertRow();
      cell(row, "No applications yet.").colSpan = 4;
    }
    for (const client of clients) {
      const row = body.insertRow();
      row.dataset.id = client.id;
      cell(row, client.name);
      cell(row, client.id, true);
      cell(row, client.redirect_uris.join(", "));
      const actions = cell(row, "");
      actions.style.whiteSpace = "nowrap";
      button(actions, "Edit", "btn-secondary edit", async () => {
        $("client-id").value = client.id;
        $("client-name").value = client.name;
        $("client-redirect").value = client.redirect;
        $("client-confidential").disabled = true;
        $("client-save").textContent = "Save changes";
        $("client-form-title").textContent = "Edit " + client.name;
        $("client-cancel").hidden = false;
      });
      actions.append(" ");
      button(actions, "Delete", "btn-danger delete", async () => {
        if (!confirm("Delete " + client.name + "? Its tokens stop working.")) return;
        await call("DELETE", "/clients/" + encodeURIComponent(client.id));
        await loadClients();
      });
    }
  }

  function resetClientForm() {
    $("client-form").reset();
    $("client-id").value = "";
    $("client-confidential").disabled = false;
    $("client-save").textContent = "Create application";
    $("client-form-title").textContent = "New application";
    $("client-cancel").hidden = true;
  }

  async function loadTokens() {
    const tokens = await call("GET", "/tokens");
    const body = $("tokens");
    body.replaceChildren();
    if (tokens.length === 0) {
      const row = body.insertRow();
      cell(row, "You have not authorized any application.").colSpan = 4;
    }
    for (const token of tokens) {
      const row = body.insertRow();
      row.dataset.id = token.id;
      cell(row, token.client.name);
      cell(row, token.scopes.join(" ") || "—");
      cell(row, day(token.expires_at));
      button(cell(row, ""), "Revoke", "btn-danger revoke", async () => {
        await call("DELETE", "/tokens/" + encodeURIComponent(token.id));
        await loadTokens();
      });
    }
  }

  async function loadPats() {
    const tokens = await call("GET", "/personal-access-tokens");
    const body = $("pats");
    body.replaceChildren();
    if (tokens.length === 0) {
      const row = body.insertRow();
      cell(row, "No personal access tokens.").colSpan = 4;
    }
    for (const token of tokens) {
      const row = body.insertRow();
      row.dataset.id = token.id;
      cell(row, token.name);
      cell(row, token.scopes.join(" ") || "—");
      cell(row, day(token.expires_at));
      button(cell(row, ""), "Revoke", "btn-danger revoke", async () => {
        await call("DELETE", "/personal-access-tokens/" + encodeURIComponent(token.id));
        await loadPats();
      });
    }
  }

  async function loadScopes() {
    const scopes = await call("GET", "/scopes");
    const box = $("pat-scopes");
    box.replaceChildren();
    for (const scope of scopes) {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.name = "scope";
      input.value = scope.id;
      const id = document.createElement("code");
      id.textContent = scope.id;
      label.append(input, " " + scope.description + " ", id);
      label.title = scope.id;
      box.appendChild(label);
    }
  }

  $("client-form").addEventListener("submit", (event) => {
    event.preventDefault();
    (async () => {
      $("error").hidden = true;
      const id = $("client-id").value;
      const fields = { name: $("client-name").value, redirect: $("client-redirect").value };
      if (id) {
        await call("PUT", "/clients/" + encodeURIComponent(id), fields);
      } else {
        fields.confidential = $("client-confidential").checked;
        const client = await call("POST", "/clients", fields);
        if (client.secret) {
          $("client-secret-name").textContent = client.name;
          $("client-secret").textContent = client.secret;
          $("client-secret-box").hidden = false;
        }
      }
      resetClientForm();
      await loadClients();
    })().catch(showError);
  });
  $("client-cancel").addEventListener("click", resetClientForm);

  $("pat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    (async () => {
      $("error").hidden = true;
      const scopes = [...document.querySelectorAll('#pat-scopes input:checked')].map((i) => i.value);
      const created = await call("POST", "/personal-access-tokens", { name: $("pat-name").value, scopes });
      $("pat-token").textContent = created.accessToken;
      $("pat-box").hidden = false;
      $("pat-form").reset();
      await loadPats();
    })().catch(showError);
  });

  for (const copy of document.querySelectorAll("button.copy")) {
    copy.addEventListener("click", async () => {
      await navigator.clipboard.writeText($(copy.dataset.copy).textContent);
      copy.textContent = "Copied";
    });
  }

  Promise.all([loadClients(), loadTokens(), loadPats(), loadScopes()]).catch(showError);
})();
