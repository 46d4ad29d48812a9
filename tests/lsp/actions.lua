-- Drives `bgtask lsp` from Neovim for tests/integration/lsp.rs's second
-- test: opens a file no run has looked at and waits for its diagnostics
-- (the server asked the daemon to analyse it; opened.json), accepts the
-- first finding in the baseline through its code action (accepted.json,
-- once it shows as accepted), then asks to see its run in the dashboard
-- (writes the page's URI to `shown`). On failure, writes `error` and
-- exits 1. Parameters come from the environment.
local function env(name)
  local value = os.getenv(name)
  assert(value, name .. " is not set")
  return value
end

local out = env("BGTASK_LSP_OUT")

local function write(name, text)
  local f = assert(io.open(out .. "/" .. name, "w"))
  f:write(text)
  f:close()
end

local function lsp_of(d)
  return (d.user_data and d.user_data.lsp) or d
end

-- Diagnostic `d` as the server sent it (what an editor gives back in a
-- code action's context).
local function as_sent(d)
  local lsp = lsp_of(d)
  return {
    range = {
      start = { line = d.lnum, character = d.col },
      ["end"] = { line = d.end_lnum, character = d.end_col },
    },
    severity = d.severity,
    message = d.message,
    source = d.source,
    code = d.code or lsp.code,
    data = lsp.data,
  }
end

local function snapshot()
  local items = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    local lsp = lsp_of(d)
    table.insert(items, {
      lnum = d.lnum,
      severity = d.severity,
      message = d.message,
      code = d.code or lsp.code,
      data = lsp.data or vim.NIL,
    })
  end
  table.sort(items, function(a, b) return a.lnum < b.lnum end)
  return items
end

-- The code actions the server offers for diagnostic `d`.
local function actions_for(d)
  local sent = as_sent(d)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(0) },
    range = sent.range,
    context = { diagnostics = { sent } },
  }
  local answers = vim.lsp.buf_request_sync(0, "textDocument/codeAction", params, 10000)
  assert(answers, "no answer to textDocument/codeAction")
  local all = {}
  for _, answer in pairs(answers) do
    assert(not answer.err, vim.inspect(answer.err))
    for _, a in ipairs(answer.result or {}) do
      table.insert(all, a)
    end
  end
  return all
end

local function run(action)
  local answers = vim.lsp.buf_request_sync(0, "workspace/executeCommand", action.command, 20000)
  assert(answers, "no answer to workspace/executeCommand")
  for _, answer in pairs(answers) do
    assert(not answer.err, vim.inspect(answer.err))
  end
end

local function titled(actions, prefix)
  for _, a in ipairs(actions) do
    if a.title:sub(1, #prefix) == prefix then
      return a
    end
  end
  error("no action '" .. prefix .. "' among " .. vim.inspect(actions))
end

local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(env("BGTASK_LSP_FILE")))
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.window = capabilities.window or {}
  capabilities.window.showDocument = { support = true }
  local config = {
    name = "bgtask",
    cmd = { env("BGTASK_LSP_BIN"), "lsp" },
    root_dir = env("BGTASK_LSP_ROOT"),
    capabilities = capabilities,
    handlers = {
      ["window/showDocument"] = function(_, result)
        write("shown", result.uri)
        return { success = true }
      end,
    },
  }
  if vim.lsp.start then
    assert(vim.lsp.start(config), "the server did not start")
  else
    local id = assert(vim.lsp.start_client(config), "the server did not start")
    vim.lsp.buf_attach_client(0, id)
  end
  local arrived = vim.wait(120000, function()
    return #vim.diagnostic.get(0) > 0
  end, 50)
  assert(arrived, "no diagnostics arrived: the file was not analysed on opening")
  write("opened.json", vim.json.encode(snapshot()))

  local first = vim.diagnostic.get(0)[1]
  local code = first.code or lsp_of(first).code
  run(titled(actions_for(first), "Accept " .. code))
  local accepted = vim.wait(20000, function()
    for _, d in ipairs(vim.diagnostic.get(0)) do
      if d.message:find("accepted in the baseline", 1, true) then
        return true
      end
    end
    return false
  end, 50)
  assert(accepted, "the finding did not show as accepted")
  write("accepted.json", vim.json.encode(snapshot()))

  local again = vim.diagnostic.get(0)[1]
  run(titled(actions_for(again), "Show run "))
  local shown = vim.wait(30000, function()
    return vim.loop.fs_stat(out .. "/shown") ~= nil
  end, 50)
  assert(shown, "the editor was not asked to show the run")
end)
if not ok then
  write("error", tostring(err))
  vim.cmd("cquit 1")
end
vim.cmd("qa!")
