-- Drives `bgtask lsp` from Neovim for tests/integration/lsp.rs: opens a
-- file, writes its diagnostics once they arrive (before.json), appends a
-- line and saves (then writes `saved`), waits until the diagnostics
-- change and writes them again (after.json). On failure, writes `error`
-- and exits 1. Then, unsaved: a line inserted at the top (moved.json),
-- and the last line replaced (edited.json). Parameters come from the
-- environment.
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

local function snapshot()
  local items = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    local lsp = (d.user_data and d.user_data.lsp) or {}
    local description = d.codeDescription or lsp.codeDescription
    table.insert(items, {
      lnum = d.lnum,
      col = d.col,
      end_lnum = d.end_lnum,
      end_col = d.end_col,
      severity = d.severity,
      message = d.message,
      source = d.source,
      code = d.code or lsp.code,
      href = description and description.href or vim.NIL,
    })
  end
  return vim.json.encode(items)
end

local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(env("BGTASK_LSP_FILE")))
  local config = {
    name = "bgtask",
    cmd = { env("BGTASK_LSP_BIN"), "lsp" },
    root_dir = env("BGTASK_LSP_ROOT"),
  }
  if vim.lsp.start then
    assert(vim.lsp.start(config), "the server did not start")
  else
    local id = assert(vim.lsp.start_client(config), "the server did not start")
    vim.lsp.buf_attach_client(0, id)
  end
  local arrived = vim.wait(30000, function()
    return #vim.diagnostic.get(0) > 0
  end, 50)
  assert(arrived, "no diagnostics arrived")
  local before = #vim.diagnostic.get(0)
  write("before.json", snapshot())

  vim.api.nvim_buf_set_lines(0, -1, -1, false, { env("BGTASK_LSP_NEW_LINE") })
  vim.cmd("write")
  write("saved", "")
  local changed = vim.wait(120000, function()
    return #vim.diagnostic.get(0) ~= before
  end, 50)
  assert(changed, "the diagnostics did not change")
  write("after.json", snapshot())

  -- Unsaved edits: the diagnostics follow their lines, or go.
  local function after_edit(name, edit)
    local last = snapshot()
    edit()
    local moved = vim.wait(10000, function()
      return snapshot() ~= last
    end, 20)
    assert(moved, "the diagnostics did not follow the edit for " .. name)
    write(name, snapshot())
  end
  after_edit("moved.json", function()
    vim.api.nvim_buf_set_lines(0, 0, 0, false, { "# a new first line" })
  end)
  after_edit("edited.json", function()
    vim.api.nvim_buf_set_lines(0, -2, -1, false, { "pass" })
  end)
end)
if not ok then
  write("error", tostring(err))
  vim.cmd("cquit 1")
end
vim.cmd("qa!")
