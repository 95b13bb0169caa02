// A field with a maxlength takes no more characters, and the browser says nothing: the 41st
// character of a 40-character name would just vanish. Say so beside the field instead.
(function () {
  function isLimited(element) {
    return (element instanceof HTMLInputElement || element instanceof HTMLTextAreaElement) && element.maxLength >= 0;
  }

  function note(element) {
    const id = (element.id || element.name) + '-limit';
    let el = document.getElementById(id);
    if (!el) {
      el = document.createElement('div');
      el.id = id;
      el.className = 'form-text text-warning-emphasis limit-note';
      el.setAttribute('aria-live', 'polite');
      element.insertAdjacentElement('afterend', el);
    }
    return el;
  }

  function wouldExceed(element, inserted) {
    const start = element.selectionStart ?? element.value.length;
    const end = element.selectionEnd ?? start;
    return element.value.length - (end - start) + inserted.length > element.maxLength;
  }

  function warn(element) {
    note(element).textContent = 'At most ' + element.maxLength + ' characters: the rest was not taken.';
  }

  document.addEventListener('beforeinput', (event) => {
    const element = event.target;
    if (!isLimited(element) || !event.inputType.startsWith('insert') || event.inputType === 'insertFromPaste') {
      return;
    }
    if (wouldExceed(element, event.data || ' ')) {
      warn(element);
    }
  });

  // Chromium may not fire beforeinput for a keystroke that maxlength refuses.
  document.addEventListener('keydown', (event) => {
    const element = event.target;
    if (isLimited(element) && event.key.length === 1 && !event.ctrlKey && !event.metaKey && wouldExceed(element, event.key)) {
      warn(element);
    }
  });

  document.addEventListener('paste', (event) => {
    const element = event.target;
    if (isLimited(element) && event.clipboardData && wouldExceed(element, event.clipboardData.getData('text'))) {
      warn(element);
    }
  });

  document.addEventListener('input', (event) => {
    const element = event.target;
    if (isLimited(element) && element.value.length < element.maxLength) {
      const el = document.getElementById((element.id || element.name) + '-limit');
      if (el) {
        el.textContent = '';
      }
    }
  });
})();
