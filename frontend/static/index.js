// The home page: create a document and open its editor. A file of its own,
// not an inline script, so that the pages' Content-Security-Policy can
// forbid inline script.
const form = document.getElementById("create");
const status = document.getElementById("status");
form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  status.textContent = "Creating…";
  try {
    const text = document.getElementById("text").value;
    const resp = await fetch("/api/docs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(text ? { text } : {}),
    });
    const body = await resp.json();
    if (!resp.ok) throw new Error(body.error ? body.error.message : resp.statusText);
    // The ids travel in the fragment, which browsers never send to servers
    // or put in Referer headers.
    location.href = `/edit.html#${body.id}`;
  } catch (err) {
    status.textContent = `Could not create the document: ${err.message}`;
  }
});
