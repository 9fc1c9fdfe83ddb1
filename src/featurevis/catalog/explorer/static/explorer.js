// Keyboard browsing on every page: the body's data-prev / data-next / data-up urls, j/k between
// tiles, / to search. Keys typed into a form field are left alone.
document.addEventListener('keydown', e => {
  const t = e.target.tagName; if (t === 'INPUT' || t === 'SELECT' || t === 'TEXTAREA') return;
  const b = document.body.dataset;
  if (e.key === '/') { e.preventDefault(); document.getElementById('q').focus(); return; }
  if (e.key === 'ArrowLeft' && b.prev) location.href = b.prev;
  else if (e.key === 'ArrowRight' && b.next) location.href = b.next;
  else if ((e.key === 'ArrowUp' || e.key === 'u' || e.key === 'Escape') && b.up) location.href = b.up;
  else if (e.key === 'j' || e.key === 'k') {
    const tiles = [...document.querySelectorAll('.tile')]; if (!tiles.length) return;
    let i = tiles.indexOf(document.activeElement); i = e.key === 'j' ? i + 1 : i - 1;
    tiles[Math.max(0, Math.min(tiles.length - 1, i))].focus();
  }
});

// The layer grid's sort form applies as soon as a choice changes (its button stays for typing a
// minimum, and for browsers without scripts); a new sort key starts from its natural order:
// channels upwards, scores best first.
const sortForm = document.getElementById('sort-form');
if (sortForm) {
  sortForm.elements.sort.addEventListener('change', e => {
    sortForm.elements.order.value = e.target.value === 'channel' ? 'asc' : 'desc';
    sortForm.submit();
  });
  sortForm.elements.order.addEventListener('change', () => sortForm.submit());
}
