#pragma once
// The graph player's style and script (html_player.cpp), inlined into every
// page to_html writes, so a page needs nothing but itself.

namespace zg::detail {

const char* html_player_style();
// Reads the page's data from <script id="zg-data" type="application/json">
// and the graph from the inlined <svg>.
const char* html_player_script();

}  // namespace zg::detail
