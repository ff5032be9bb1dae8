// Replays a host-engine session on the Verilated simulation top with no Python at all: the
// free-running speed limit of the RTL (bench/sim_speed.py).
//
// The trace (written by sim/tb/fabric_server.py when WAFER_SIM_TRACE is set) has one action per
// line:
//   P <signal> <hex>          write a top-level port
//   M <memory> <index> <hex>  write one word of an engine ring
//   G <tag>                   clock until the top stops itself (`stopped` rises); runs tagged
//                             "run" are timed
// Usage: replay <trace>; prints one JSON object: cycles and seconds of the timed runs (in all,
// and each as [cycles, seconds]), all cycles, and the wall time of the whole replay.
#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

static vluint64_t main_time = 0;
double sc_time_stamp() { return (double)main_time; }

static const char* TOP = "wafer_sim_top";
static std::map<std::string, vpiHandle> handles;

static vpiHandle handle(const std::string& name) {
    auto it = handles.find(name);
    if (it != handles.end()) return it->second;
    std::string full = std::string(TOP) + "." + name;
    vpiHandle h = vpi_handle_by_name((PLI_BYTE8*)full.c_str(), nullptr);
    if (!h) {
        fprintf(stderr, "replay: no signal %s\n", full.c_str());
        exit(2);
    }
    handles[name] = h;
    return h;
}

static void put(vpiHandle h, const std::string& hex) {
    s_vpi_value v;
    v.format = vpiHexStrVal;
    v.value.str = (PLI_BYTE8*)hex.c_str();
    vpi_put_value(h, &v, nullptr, vpiNoDelay);
}

static int get_bit(vpiHandle h) {
    s_vpi_value v;
    v.format = vpiIntVal;
    vpi_get_value(h, &v);
    return v.value.integer;
}

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <trace>\n", argv[0]);
        return 2;
    }
    Verilated::commandArgs(argc, argv);
    Vtop* top = new Vtop("");
    auto tick = [&]() {
        top->clk = 0;
        top->eval();
        main_time += 5;
        top->clk = 1;
        top->eval();
        main_time += 5;
    };
    auto wall0 = std::chrono::steady_clock::now();
    top->rst = 1;
    tick();
    tick();
    top->rst = 0;
    tick();
    vpiHandle stopped = handle("stopped");
    std::ifstream in(argv[1]);
    std::string line;
    double run_s = 0;
    std::vector<std::pair<unsigned long long, double>> runs;
    unsigned long long run_cycles = 0, all_cycles = 0, limit = 2000000000ULL;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string op, name, a, b;
        ls >> op >> name;
        if (op == "P") {
            ls >> a;
            put(handle(name), a);
            top->eval();
        } else if (op == "M") {
            ls >> a >> b;
            std::string key = name + "[" + a + "]";
            auto it = handles.find(key);
            vpiHandle h;
            if (it == handles.end()) {
                h = vpi_handle_by_index(handle(name), atoi(a.c_str()));
                handles[key] = h;
            } else {
                h = it->second;
            }
            put(h, b);
        } else if (op == "G") {
            top->eval();
            auto t0 = std::chrono::steady_clock::now();
            unsigned long long n = 0;
            // The start takes effect a few edges later (the top registers its inputs); then run
            // until the top stops itself.
            while (get_bit(stopped) && n < 16) {
                tick();
                n++;
            }
            while (!get_bit(stopped) && n < limit) {
                tick();
                n++;
            }
            double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                           .count();
            all_cycles += n;
            if (name == "run") {
                run_s += s;
                run_cycles += n;
                runs.emplace_back(n, s);
            }
        }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    printf("{\"run_cycles\": %llu, \"run_seconds\": %.6f, \"all_cycles\": %llu, "
           "\"wall_seconds\": %.6f, \"runs\": [",
           run_cycles, run_s, all_cycles, wall);
    for (size_t i = 0; i < runs.size(); i++)
        printf("%s[%llu, %.6f]", i ? ", " : "", runs[i].first, runs[i].second);
    printf("]}\n");
    top->final();
    delete top;
    return 0;
}
