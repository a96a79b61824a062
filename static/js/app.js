// Progressive enhancement only: every page works without JavaScript.
import { initAll } from '/assets/nhsuk-frontend.min.js'
import './timeout.js'

document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')
initAll()

// Print buttons (data-app-print): hidden by the stylesheet until this runs, as printing needs JavaScript.
for (const button of document.querySelectorAll('[data-app-print]')) {
  button.addEventListener('click', () => window.print())
}
