// The timeout warning (NHS.UK / GOV.UK pattern, WCAG 2.2.1): shortly before the idle limit a modal dialog
// offers "Stay signed in" or "Sign out"; with no answer the page moves to "You have been signed out".
// Configured by data- attributes on the element templates/partials/timeout_warning.html renders for
// signed-in people. Without JavaScript the page's own line explains the limit.

const SCREEN_READER_EVERY = 20 // seconds between spoken countdowns (a spoken tick every second drowns the page)

function words (seconds) {
  const whole = Math.max(0, Math.ceil(seconds))
  if (whole >= 60) {
    const minutes = Math.ceil(whole / 60)
    return `${minutes} minute${minutes === 1 ? '' : 's'}`
  }
  return `${whole} second${whole === 1 ? '' : 's'}`
}

function focusable (dialog) {
  return [...dialog.querySelectorAll('button, [href], input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])')]
    .filter((el) => !el.disabled && el.offsetParent !== null)
}

export function initTimeoutWarning (root) {
  const dialog = root.querySelector('dialog')
  if (!dialog || typeof dialog.showModal !== 'function') return // the line in the page still explains the limit
  const countdown = root.querySelector('[data-timeout-countdown]')
  const announce = root.querySelector('[data-timeout-announce]')
  const stay = root.querySelector('[data-timeout-stay]')
  const timedOutForm = root.querySelector('[data-timeout-form]')
  const csrfToken = root.querySelector('input[name=csrf_token]').value
  const warningSeconds = Number(root.dataset.warningSeconds)
  let deadline = Date.now() + Number(root.dataset.secondsLeft) * 1000
  let lastSpoken = 0
  let returnFocus = null
  let ended = false

  function secondsLeft () {
    return (deadline - Date.now()) / 1000
  }

  function open () {
    returnFocus = document.activeElement
    dialog.showModal()
    dialog.focus() // the dialog itself, so its heading and text are read first
    lastSpoken = 0
    speak(true)
  }

  function speak (now) {
    const left = secondsLeft()
    if (now || Date.now() - lastSpoken >= SCREEN_READER_EVERY * 1000) {
      announce.textContent = `We will sign you out in ${words(left)}.`
      lastSpoken = Date.now()
    }
  }

  function signOut () {
    if (ended) return
    ended = true
    if (timedOutForm) timedOutForm.submit()
    else window.location.assign(root.dataset.signedOutUrl)
  }

  function close () {
    if (dialog.open) dialog.close()
    announce.textContent = ''
    if (returnFocus && typeof returnFocus.focus === 'function') returnFocus.focus()
  }

  async function staySignedIn () {
    stay.disabled = true
    try {
      const response = await fetch(root.dataset.keepAliveUrl, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'X-CSRFToken': csrfToken, Accept: 'application/json' }
      })
      if (response.status === 401) {
        window.location.assign(root.dataset.signedOutUrl)
        return
      }
      if (!response.ok) throw new Error(`stay signed in: ${response.status}`)
      const body = await response.json()
      deadline = Date.now() + Number(body.seconds_left) * 1000
      close()
    } catch (error) {
      announce.textContent = 'Sorry, we could not keep you signed in. Try again.'
    } finally {
      stay.disabled = false
    }
  }

  function tick () {
    const left = secondsLeft()
    if (left <= 0) {
      signOut()
      return
    }
    if (left <= warningSeconds && !dialog.open) open()
    if (dialog.open) {
      countdown.textContent = words(left)
      speak(false)
    }
  }

  stay.addEventListener('click', staySignedIn)
  // Escape means "not now": the person is here, so they stay signed in (as in the GOV.UK pattern).
  dialog.addEventListener('cancel', (event) => {
    event.preventDefault()
    staySignedIn()
  })
  // Keep Tab and Shift+Tab inside the dialog while it is open.
  dialog.addEventListener('keydown', (event) => {
    if (event.key !== 'Tab') return
    const items = focusable(dialog)
    if (!items.length) return
    const first = items[0]
    const last = items[items.length - 1]
    if (event.shiftKey && (document.activeElement === first || document.activeElement === dialog)) {
      event.preventDefault()
      last.focus()
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault()
      first.focus()
    }
  })
  tick()
  window.setInterval(tick, 1000)
}

document.querySelectorAll('[data-module="app-timeout-warning"]').forEach(initTimeoutWarning)
