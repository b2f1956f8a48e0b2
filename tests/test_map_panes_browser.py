"""The shared map (dispatch/static/onekey/map.js) stacks what a dispatcher clicks on top: a case
drawn where a hospital or a unit is (a patient at a hospital's gate, a unit on scene) is the shape
the pointer reaches, and the selected case is above every other case. What lies under a case's
pane where no case is drawn still gets the pointer."""

from __future__ import annotations

import pytest


pytestmark = pytest.mark.browser

# The Heyi campus of the First Affiliated Hospital, in the urban core.
GATE = (34.7545, 113.6420)

MAP_SETUP = """async ([lat, lon]) => {
  const { createMap } = await import('/static/onekey/map.js');
  const el = document.createElement('div');
  el.id = 'panemap';
  el.style.width = '800px';
  el.style.height = '600px';
  document.body.prepend(el);
  const map = createMap(el, {});
  // map.js links Leaflet's stylesheet and its own as it starts: until they apply, the panes are
  // not yet stacked and the markers sit anywhere in the page.
  const sheets = [...document.querySelectorAll('link[rel="stylesheet"]')]
    .filter((l) => l.href.endsWith('/leaflet.css') || l.href.endsWith('/map.css'));
  if (sheets.length !== 2) throw new Error(`map.js linked ${sheets.length} of its 2 stylesheets`);
  await Promise.all(sheets.map((l) => l.sheet ? null : new Promise((ok, fail) => {
    l.addEventListener('load', ok);
    l.addEventListener('error', fail);
  })));
  map.leaflet.invalidateSize({ pan: false });
  window.__map = map;
  window.__selected = [];
  window.__clicks = [];
  map.onSelect((id) => window.__selected.push(id));
  map.onClick((p) => window.__clicks.push(p));
  map.leaflet.setView([lat, lon], 16, { animate: false });
  return map.counts();
}"""

# What the pointer reaches at a viewport point: the map object (case, unit, hospital) it belongs to.
HIT = """([x, y]) => {
  const hit = document.elementFromPoint(x, y);
  const owner = hit && hit.closest('.onekey-case, .onekey-unit, .onekey-hospital');
  return owner ? owner.getAttribute('class') : (hit ? hit.tagName : null);
}"""


def open_map(site, page) -> None:
    page.goto(site.url + "/accounts/login/")
    assert page.evaluate(MAP_SETUP, list(GATE)) == {"cases": 0, "units": 0, "hospitals": 0}


def centre(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def hit(page, point: tuple[float, float]) -> str:
    return page.evaluate(HIT, list(point))


def test_it_lets_a_click_on_a_case_at_a_hospitals_gate_reach_the_case(site, page):
    open_map(site, page)
    lat, lon = GATE
    # The case first, the hospital and a unit on scene after: drawing order must not decide.
    page.evaluate(
        """([lat, lon]) => {
          window.__map.setCase({ id: 7, status: 'received', complaint: 'chest_pain', lat, lon });
          window.__map.setUnit({ id: 3, call_sign: 'ZZ120-T-1', status: 'on_scene', lat, lon,
                                 position_at: new Date().toISOString() });
          window.__map.setHospital({ id: 1, code: 'FAHZU-HY', name_zh: '郑大一附院', name_en: 'FAHZU', lat, lon,
                                     ed_status: 'open', ed_free_beds: 4 });
        }""",
        [lat, lon],
    )
    assert page.evaluate("window.__map.counts()") == {"cases": 1, "units": 1, "hospitals": 1}
    at_case = centre(page, "#panemap path.onekey-case-7")
    # The hospital's marker really is under the case (otherwise this proves nothing).
    hospital_box = page.locator("#panemap .onekey-hospital-1").bounding_box()
    assert hospital_box["x"] <= at_case[0] <= hospital_box["x"] + hospital_box["width"]
    assert hospital_box["y"] <= at_case[1] <= hospital_box["y"] + hospital_box["height"]

    assert "onekey-case-7" in hit(page, at_case)
    page.mouse.click(*at_case)
    assert page.evaluate("window.__selected") == [7]
    assert page.evaluate("window.__clicks") == []  # the case took the click, not the map
    # Selected, it is still on top (now in the selected case's pane) and still clickable.
    page.evaluate("window.__map.select(7)")
    assert "onekey-selected" in hit(page, centre(page, "#panemap path.onekey-case-7"))
    page.mouse.click(*centre(page, "#panemap path.onekey-case-7"))
    assert page.evaluate("window.__selected") == [7, 7]
    assert page.csp_violations() == []


def test_it_keeps_the_selected_case_above_a_case_drawn_after_it(site, page):
    open_map(site, page)
    lat, lon = GATE
    page.evaluate(
        """([lat, lon]) => {
          window.__map.setCase({ id: 1, status: 'assigned', complaint: 'stroke', lat, lon });
          window.__map.select(1);
          // A new tap from the same block arrives while case 1 is open in the details panel.
          window.__map.setCase({ id: 2, status: 'received', complaint: 'trauma', lat, lon });
        }""",
        [lat, lon],
    )
    at_case = centre(page, "#panemap path.onekey-case-2")
    assert "onekey-case-1" in hit(page, at_case)
    page.mouse.click(*at_case)
    assert page.evaluate("window.__selected") == [1]
    # Selecting the other moves it up and the first back down among the cases.
    page.evaluate("window.__map.select(2)")
    assert "onekey-case-2" in hit(page, at_case)
    assert page.locator("#panemap path.onekey-case-1:not(.onekey-selected)").count() == 1
    page.evaluate("window.__map.select(null)")
    assert page.locator("#panemap path.onekey-selected").count() == 0
    assert page.evaluate("window.__map.counts()")["cases"] == 2
    assert page.csp_violations() == []


def test_it_still_gives_the_pointer_to_a_hospital_beside_a_case_and_to_the_map_around_them(site, page):
    open_map(site, page)
    lat, lon = GATE
    page.evaluate(
        """([lat, lon]) => {
          window.__map.setHospital({ id: 1, code: 'FAHZU-HY', name_zh: '郑大一附院', name_en: 'FAHZU', lat, lon,
                                     ed_status: 'diverting', ed_free_beds: 0 });
          // A case some 40 px east of the hospital (zoom 16: ~2.4 m per px at this latitude).
          window.__map.setCase({ id: 9, status: 'received', complaint: 'fall', lat, lon: lon + 0.0009 });
        }""",
        [lat, lon],
    )
    at_hospital = centre(page, "#panemap .onekey-hospital-1")
    assert "onekey-hospital-1" in hit(page, at_hospital)
    page.locator("#panemap .onekey-hospital-1").hover()
    assert page.locator(".leaflet-tooltip").filter(has_text="ED diverting").count() == 1
    # An empty spot of the map, under the cases' panes, still reaches the map (a phoned-in call).
    box = page.locator("#panemap").bounding_box()
    page.mouse.click(box["x"] + 80, box["y"] + box["height"] - 80)
    assert len(page.evaluate("window.__clicks")) == 1
    assert page.evaluate("window.__selected") == []
    assert page.csp_violations() == []
