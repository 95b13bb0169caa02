// Validate's answer arrives below the buttons: move the focus to its summary (screen
// readers read it, the keyboard continues from there) and scroll it into view, so the
// admin sees it wherever the button was on a long form.
document.addEventListener('htmx:afterSwap', (event) => {
  const target = event.detail && event.detail.target;
  if (!target || target.id !== 'validate-result') {
    return;
  }
  const summary = target.querySelector('[data-validate-focus]') || target;
  summary.focus({ preventScroll: true });
  summary.scrollIntoView({ block: 'center' });
});
