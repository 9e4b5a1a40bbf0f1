// The prediction page: the "probability overlay" checkbox shows or hides the overlay over the photo.
const toggle = document.getElementById("toggle-overlay");
const stack = document.getElementById("stack");
const apply = () => stack.classList.toggle("pl-toggle", !toggle.checked);
toggle.addEventListener("change", apply);
apply();  // a checkbox the browser restored unchecked (back button) hides the overlay too
