// Loaded last: every page has registered itself.
"use strict";
listen();
render();
