// Load this classic script before tfjs/tf.min.js on every page that runs TF.js (the try-on page through
// inbrowser.js, a model's TF.js check page). The site's Content-Security-Policy allows no eval (script-src
// 'self', annotation_site/security_headers.py). TF.js 4.22 bundles regenerator-runtime, which assigns the global
// `regeneratorRuntime` from strict code; when that global does not exist yet the assignment throws and it falls
// back to Function("r", "regeneratorRuntime = r"), an eval the policy blocks, and TF.js does not load at all.
// With the global declared first the plain assignment succeeds and nothing is evaluated.
if (!("regeneratorRuntime" in window)) window.regeneratorRuntime = undefined;
