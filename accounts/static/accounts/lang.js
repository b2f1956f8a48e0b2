// The language switcher's visible effect: pages show English and 中文 side by side, English first.
// With 中文 chosen, each bilingual label puts its Chinese part first. Runs again on whatever the
// page's scripts render later, so live rows follow the same order.
const chosen = document.documentElement.dataset.primary || "";

function flip(root) {
  for (const span of root.querySelectorAll('span[lang="zh-CN"]:not([data-flipped])')) {
    span.dataset.flipped = "1";
    const before = span.previousSibling;
    if (before && before.nodeType === Node.TEXT_NODE && before.textContent.trim()) {
      span.parentNode.insertBefore(span, before);
      before.textContent = " " + before.textContent.trim() + " ";
    }
  }
}

if (chosen.startsWith("zh")) {
  flip(document);
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.nodeType === Node.ELEMENT_NODE) flip(node.parentNode || node);
      }
    }
  }).observe(document.body, { childList: true, subtree: true });
}
