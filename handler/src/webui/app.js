// edgedav web interface: enhances the listing the server rendered with
// sorting, uploads (file picker and drag and drop, streamed with progress),
// new folders, rename and delete, all as plain WebDAV requests to the same
// origin, so the browser's own credentials (HTTP Basic) go with them.
//
// Whether the user may write is only known by trying: write controls are
// always shown, and a refusal is reported with its status and what it means.
// Names only ever reach the page through textContent, and URLs are built
// from the percent-encoded hrefs the server rendered plus
// encodeURIComponent() of each new name.
'use strict';

(() => {
  const table = document.getElementById('listing');
  if (!table) return;
  const collection = table.dataset.collection; // percent-encoded, ends in '/'
  const input = document.getElementById('upload-input');
  const message = document.getElementById('message');
  const progress = document.getElementById('progress');
  const bar = document.getElementById('progress-bar');
  const progressText = document.getElementById('progress-text');
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  let sortKey = 'name';
  let sortDir = 1;
  let busy = false;

  const REASONS = {
    400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
    405: 'Method Not Allowed', 409: 'Conflict', 412: 'Precondition Failed',
    413: 'Content Too Large', 414: 'URI Too Long', 423: 'Locked',
    500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable',
    507: 'Insufficient Storage',
  };
  const MEANINGS = {
    401: 'you are not signed in, or your credentials were not accepted',
    403: 'you do not have permission to make this change',
    404: 'it no longer exists',
    405: 'this is not allowed here',
    409: 'the folder it belongs in is missing',
    412: 'something with that name already exists',
    413: 'it is too large for this server',
    414: 'the name is too long',
    423: 'it is locked',
    507: 'there is not enough storage space left (quota exceeded)',
  };

  // Absolute URL of a server path; location.origin never carries user:pass@,
  // which fetch() refuses and XHR would send instead of the cached login.
  const url = (path) => location.origin + path;
  const rows = () => Array.from(table.tBodies[0].rows);
  const hrefOf = (row) => row.querySelector('a').getAttribute('href');
  const isDir = (row) => row.classList.contains('dir');

  function show(text, kind) {
    message.textContent = text;
    message.className = 'message' + (kind ? ' ' + kind : '');
  }

  function refused(what, response, meanings = {}) {
    if (response.status === 0) {
      show(`${what} failed: the server could not be reached.`, 'error');
      return;
    }
    const reason = response.statusText || REASONS[response.status] || '';
    const meaning = meanings[response.status] || MEANINGS[response.status];
    show(`${what} was refused: ${response.status} ${reason}` +
      (meaning ? ` (${meaning}).` : '.'), 'error');
  }

  // One request through XHR: it reports upload progress and, given a File as
  // the body, streams it from disk instead of reading it into memory.
  function send(method, path, { headers = {}, body = null, onprogress = null } = {}) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url(path));
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      if (onprogress) xhr.upload.onprogress = onprogress;
      xhr.onload = () => resolve({ status: xhr.status, statusText: xhr.statusText });
      xhr.onerror = xhr.onabort = () => resolve({ status: 0, statusText: '' });
      xhr.send(body);
    });
  }

  // Runs one write operation at a time, so progress and messages stay clear.
  async function exclusive(operation) {
    if (busy) {
      show('Please wait for the current operation to finish.', 'error');
      return;
    }
    busy = true;
    document.body.classList.add('busy');
    try {
      await operation();
    } finally {
      busy = false;
      document.body.classList.remove('busy');
    }
  }

  // Replaces the rows with a fresh server rendering of this collection.
  async function refresh() {
    let response;
    try {
      response = await fetch(url(collection), { cache: 'no-store', headers: { Accept: 'text/html' } });
    } catch {
      response = { status: 0 };
    }
    if (!response.ok) {
      refused('Refreshing the listing', response);
      return;
    }
    const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
    const fresh = doc.querySelector('#listing tbody');
    if (!fresh) return;
    table.tBodies[0].replaceWith(document.adoptNode(fresh));
    enhanceRows();
    sortRows();
  }

  function askName(question, initial) {
    const name = window.prompt(question, initial);
    if (name === null) return null;
    const problem = name === '' ? 'it is empty'
      : name.includes('/') ? 'it contains “/”'
        : name === '.' || name === '..' ? 'it is “.” or “..”' : '';
    if (problem) {
      show(`“${name}” cannot be used as a name: ${problem}.`, 'error');
      return null;
    }
    return name;
  }

  function upload(fileList) {
    const files = Array.from(fileList);
    if (files.length === 0) return;
    return exclusive(async () => {
      const existing = new Set(rows().map((row) => row.dataset.name));
      const clashes = files.filter((file) => existing.has(file.name));
      if (clashes.length > 0 && !window.confirm(clashes.length === 1
        ? `Replace the existing “${clashes[0].name}”?`
        : `Replace ${clashes.length} existing files?`)) {
        return;
      }
      const total = files.reduce((sum, file) => sum + file.size, 0) || 1;
      let done = 0;
      let uploaded = 0;
      show('', '');
      bar.value = 0;
      progress.hidden = false;
      try {
        for (const file of files) {
          progressText.textContent = `Uploading “${file.name}”…`;
          const response = await send('PUT', collection + encodeURIComponent(file.name), {
            body: file,
            onprogress: (event) => { bar.value = (done + event.loaded) / total; },
          });
          if (response.status < 200 || response.status > 299) {
            refused(`Uploading “${file.name}”`, response,
              { 405: 'a folder with that name already exists' });
            break;
          }
          done += file.size;
          uploaded += 1;
          bar.value = done / total;
        }
      } finally {
        progress.hidden = true;
      }
      await refresh();
      if (uploaded === files.length) {
        show(uploaded === 1 ? `Uploaded “${files[0].name}”.` : `Uploaded ${uploaded} files.`, 'ok');
      }
    });
  }

  function newFolder() {
    const name = askName('Name of the new folder:', '');
    if (name === null) return;
    return exclusive(async () => {
      const response = await send('MKCOL', collection + encodeURIComponent(name) + '/');
      if (response.status !== 201) {
        refused(`Creating the folder “${name}”`, response,
          { 405: 'something with that name already exists' });
        return;
      }
      await refresh();
      show(`Created the folder “${name}”.`, 'ok');
    });
  }

  function rename(row) {
    const old = row.dataset.name;
    const name = askName(`New name for “${old}”:`, old);
    if (name === null || name === old) return;
    return exclusive(async () => {
      const target = collection + encodeURIComponent(name) + (isDir(row) ? '/' : '');
      const response = await send('MOVE', hrefOf(row), {
        headers: { Destination: url(target), Overwrite: 'F' },
      });
      if (response.status === 207) {
        await refresh();
        show(`Renaming “${old}” was only partly done: some items inside could not be moved.`, 'error');
      } else if (response.status !== 201 && response.status !== 204) {
        refused(`Renaming “${old}”`, response);
      } else {
        await refresh();
        show(`Renamed “${old}” to “${name}”.`, 'ok');
      }
    });
  }

  function remove(row) {
    const name = row.dataset.name;
    if (!window.confirm(isDir(row)
      ? `Delete the folder “${name}” and everything in it?`
      : `Delete “${name}”?`)) {
      return;
    }
    return exclusive(async () => {
      const response = await send('DELETE', hrefOf(row));
      if (response.status === 207) {
        await refresh();
        show(`Deleting “${name}” was only partly done: some items inside could not be deleted.`, 'error');
      } else if (response.status < 200 || response.status > 299) {
        refused(`Deleting “${name}”`, response);
      } else {
        await refresh();
        show(`Deleted “${name}”.`, 'ok');
      }
    });
  }

  function button(label, action, name) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.dataset.action = action;
    b.setAttribute('aria-label', `${label} “${name}”`);
    return b;
  }

  function enhanceRows() {
    for (const row of rows()) {
      const cell = row.insertCell();
      cell.className = 'actions';
      cell.append(button('Rename', 'rename', row.dataset.name),
        button('Delete', 'delete', row.dataset.name));
    }
  }

  function sortRows() {
    const key = sortKey;
    const sorted = rows().sort((a, b) => {
      const folders = isDir(b) - isDir(a); // folders first, either direction
      if (folders !== 0) return folders;
      const order = key === 'name' ? 0 : Number(a.dataset[key]) - Number(b.dataset[key]);
      return sortDir * (order || collator.compare(a.dataset.name, b.dataset.name));
    });
    const fragment = document.createDocumentFragment();
    for (const row of sorted) fragment.append(row);
    table.tBodies[0].append(fragment);
    for (const th of table.tHead.rows[0].cells) {
      if (!th.dataset.sort) continue;
      if (th.dataset.sort === key) th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
  }

  function enhanceHead() {
    const head = table.tHead.rows[0];
    for (const th of head.cells) {
      const key = th.dataset.sort;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'sort';
      b.textContent = th.textContent;
      b.addEventListener('click', () => {
        sortDir = key === sortKey ? -sortDir : 1;
        sortKey = key;
        sortRows();
      });
      th.replaceChildren(b);
    }
    const actions = document.createElement('th');
    actions.scope = 'col';
    actions.className = 'actions';
    actions.textContent = 'Actions';
    head.append(actions);
  }

  const carriesFiles = (event) => event.dataTransfer
    && Array.from(event.dataTransfer.types).includes('Files');

  document.getElementById('upload').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const files = Array.from(input.files);
    input.value = '';
    upload(files);
  });
  document.getElementById('new-folder').addEventListener('click', newFolder);
  table.addEventListener('click', (event) => {
    const b = event.target.closest('button[data-action]');
    if (!b) return;
    const row = b.closest('tr');
    if (b.dataset.action === 'rename') rename(row);
    else remove(row);
  });
  document.addEventListener('dragover', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    document.body.classList.add('dropping');
  });
  document.addEventListener('dragleave', (event) => {
    if (event.relatedTarget === null) document.body.classList.remove('dropping');
  });
  document.addEventListener('drop', (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    document.body.classList.remove('dropping');
    const folder = Array.from(event.dataTransfer.items || [])
      .some((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()?.isDirectory);
    if (folder) {
      show('Folders cannot be dropped: create the folder, open it, then drop its files.', 'error');
      return;
    }
    upload(event.dataTransfer.files);
  });

  enhanceHead();
  enhanceRows();
  sortRows();
  document.getElementById('tools').hidden = false;
  document.body.classList.add('ready');
})();
