/* Backupsite's page behaviour. The Content-Security-Policy allows no inline script, no inline
 * event handler and no style attribute, so everything a page does beyond htmx lives here,
 * keyed on ids and data attributes, and does nothing on pages without them. */
(function () {
  'use strict';

  /* Progress bars carry their width in data-width: a style attribute would be refused. */
  function sizeBars(root) {
    root.querySelectorAll('[data-width]').forEach((el) => {
      const value = Number(el.dataset.width);
      if (Number.isFinite(value)) el.style.width = Math.max(0, Math.min(100, value)) + '%';
    });
  }

  /* "Cancel" links go back where the user came from; without script they follow their href. */
  document.addEventListener('click', (event) => {
    const link = event.target instanceof Element && event.target.closest('a[data-history-back]');
    if (link && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });

  /* Backup job form: only the schedule fields of the chosen kind are shown. */
  function wireScheduleKind() {
    const kind = document.getElementById('id_schedule_kind');
    if (!kind) return;
    function update() {
      document.querySelectorAll('.schedule-field').forEach((el) => {
        el.classList.toggle('d-none', !(el.dataset.kinds || '').split(' ').includes(kind.value));
      });
    }
    kind.addEventListener('change', update);
    update();
  }

  /* Destination form: the reindex schedule only for cPanel, a warning for the root user. */
  function wireDestinationForm() {
    const form = document.getElementById('destination-form');
    if (!form) return;
    const schedule = document.getElementById('reindex-schedule-group');
    if (schedule) {
      const toggleSchedule = () => {
        const checked = form.querySelector('input[name="engine"]:checked');
        schedule.classList.toggle('d-none', !checked || checked.value !== 'cpanel');
      };
      form.querySelectorAll('input[name="engine"]').forEach((input) => input.addEventListener('change', toggleSchedule));
      toggleSchedule();
    }
    const username = document.getElementById('id_username');
    const warning = document.getElementById('root-warning');
    if (username && warning) {
      username.addEventListener('input', () => {
        warning.classList.toggle('d-none', username.value.trim().toLowerCase() !== 'root');
      });
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    sizeBars(document);
    wireScheduleKind();
    wireDestinationForm();
  });
  /* Content that htmx swaps in (progress polls, Validate) gets the same treatment. */
  document.addEventListener('htmx:load', (event) => {
    if (event.target instanceof Element) sizeBars(event.target);
  });
})();
