// The Events page's live timeline: follows the project's event stream (the session cookie
// authenticates it) and adds each event at the top of the list.
(function () {
  var list = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!list || !window.EventSource) { return; }
  var source = new EventSource(list.getAttribute("data-stream"));
  source.onopen = function () { state.textContent = "Listening for new events."; };
  source.onerror = function () { state.textContent = "Disconnected; retrying…"; };
  function show(message) {
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    var item = document.createElement("li");
    var text = "#" + event.sequence + " " + event.type + " · " + event.time + " · " + event.actor;
    if (event.subject) { text += " · " + event.subject; }
    item.textContent = text;
    list.insertBefore(item, list.firstChild);
  }
  // Each event is named by its type (EventSource hands unnamed ones only to onmessage), so
  // listen to every type the server writes.
  ["api_key.create", "api_key.revoke", "guardrail.block", "guardrail.override",
   "memory.create", "memory.delete", "memory.restore", "memory.update", "plan.create",
   "playbook.advance", "playbook.finish", "playbook.record", "playbook.start",
   "project.create", "project.update", "session.advance", "session.start", "snapshot.store",
   "state.update", "task.update", "webhook.create", "webhook.delete", "webhook.disable",
   "webhook.test"].forEach(function (name) { source.addEventListener(name, show); });
  source.onmessage = show;
})();
