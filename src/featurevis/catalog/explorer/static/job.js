// The job page: poll /api/jobs/ID until the job is done (then show its image) or failed.
const box = document.getElementById('job');
async function poll() {
  const r = await fetch('/api/jobs/' + box.dataset.id); const j = await r.json();
  if (!r.ok) { document.getElementById('status').textContent = 'error: ' + j.error; return; }
  const bar = document.getElementById('bar'); bar.max = j.total; bar.value = j.done;
  const where = j.status === 'queued' ? ` (${j.queue_position} ahead)` : '';
  document.getElementById('status').textContent = j.status + where + ` ${j.done}/${j.total}`;
  if (j.status === 'done' && j.page) {  // a result with a page of its own (an explanation)
    const a = document.createElement('a'); a.href = j.page; a.id = 'result-page'; a.textContent = 'open the explanation';
    document.getElementById('out').replaceChildren(a);
    document.getElementById('status').textContent = `done in ${j.seconds} s`; location.assign(j.page); return;
  }
  if (j.status === 'done') {
    const img = document.createElement('img'); img.src = j.result; img.id = 'result'; img.className = 'big';
    document.getElementById('out').replaceChildren(img);
    document.getElementById('status').textContent = `done in ${j.seconds} s`; return;
  }
  if (j.status === 'error') { document.getElementById('status').textContent = 'error: ' + j.message; return; }
  setTimeout(poll, 400);
}
poll();
