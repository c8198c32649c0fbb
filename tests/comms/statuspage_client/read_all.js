// Reads every Statuspage public v2 document from a Breakglass base URL with the
// `statuspage.io` npm client, and prints what it got as one JSON object.
//
// The client's own methods cover summary, status, components, incidents (all, unresolved)
// and scheduled maintenances (upcoming). In statuspage.io 3.3.8 getActive() and getAll()
// both request upcoming.json (a bug in its Endpoints table), so those two documents are
// fetched through the client's own HTTP client and base URL instead.
"use strict";
const { Statuspage } = require("statuspage.io");

async function main() {
  const base = process.argv[2];
  const client = new Statuspage("breakglass");
  client.setApiUrl(base);
  const api = client.api;
  const http = client.apiClient;
  const documents = {
    "summary.json": await api.getSummary(),
    "status.json": await api.getStatus(),
    "components.json": await api.getComponents(),
    "incidents.json": await api.incidents.getAll(),
    "incidents/unresolved.json": await api.incidents.getUnresolved(),
    "scheduled-maintenances/upcoming.json": await api.scheduledMaintenances.getUpcoming(),
    "scheduled-maintenances.json": (await http.get("/api/v2/scheduled-maintenances.json")).data,
    "scheduled-maintenances/active.json": (
      await http.get("/api/v2/scheduled-maintenances/active.json")
    ).data,
  };
  process.stdout.write(JSON.stringify(documents));
}

main().catch((error) => {
  process.stderr.write(`statuspage client failed: ${error.message}\n`);
  process.exit(1);
});
