// Dumps the layer values of dlib's dlib_face_recognition_resnet_model_v1.dat for convert_dlib.py.
//
// Build (Debian/Ubuntu: apt-get install libdlib-dev; pkg-config's BLAS/LAPACK flags are not needed):
//     g++ -O2 dlib_dump.cpp -o dlib_dump -ldlib -lpthread
// Run:
//     ./dlib_dump dlib_face_recognition_resnet_model_v1.dat > layers.bin
//
// Output: one record per computational layer, from the input to the output. A record is an ASCII
// header line, then its values as little-endian float32:
//     con <filters> <rows> <cols> <stride_y> <stride_x> <pad_y> <pad_x> <bias 0|1> <count>
//     affine <channels> <count>            (gamma, then beta: batch norm folded by dlib)
//     fc <outputs> <bias 0|1> <count>      (a (inputs [+1], outputs) matrix, row-major)
// The network type is the one of dlib's examples/dnn_face_recognition_ex.cpp (Davis E. King,
// Boost Software License); the weights file it reads is public domain (CC0).

#include <dlib/dnn.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

using namespace dlib;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = add_prev1<block<N, BN, 1, tag1<SUBNET>>>;

template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<block<N, BN, 2, tag1<SUBNET>>>>>>;

template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, stride, stride, SUBNET>>>>>;

template <int N, typename SUBNET> using ares = relu<residual<block, N, affine, SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block, N, affine, SUBNET>>;

template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;

using anet_type = loss_metric<fc_no_bias<128, avg_pool_everything<
    alevel0<alevel1<alevel2<alevel3<alevel4<
    max_pool<3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2, input_rgb_image_sized<150>>>>>>>>>>>>>;

struct record {
    std::string header;
    std::vector<float> values;
};

static std::vector<float> copy_values(const tensor& t) {
    return std::vector<float>(t.host(), t.host() + t.size());
}

struct dumper {
    std::vector<record>* records;

    template <long K, long NR, long NC, int SY, int SX, int PY, int PX>
    void operator()(const con_<K, NR, NC, SY, SX, PY, PX>& l) const {
        std::ostringstream header;
        const tensor& params = l.get_layer_params();
        header << "con " << l.num_filters() << " " << l.nr() << " " << l.nc() << " " << l.stride_y() << " "
               << l.stride_x() << " " << l.padding_y() << " " << l.padding_x() << " " << !l.bias_is_disabled()
               << " " << params.size();
        records->push_back({header.str(), copy_values(params)});
    }

    void operator()(const affine_& l) const {
        std::vector<float> values = copy_values(l.get_gamma());
        std::vector<float> beta = copy_values(l.get_beta());
        std::ostringstream header;
        header << "affine " << values.size() << " " << values.size() + beta.size();
        values.insert(values.end(), beta.begin(), beta.end());
        records->push_back({header.str(), values});
    }

    template <unsigned long N, fc_bias_mode B>
    void operator()(const fc_<N, B>& l) const {
        std::ostringstream header;
        const tensor& params = l.get_layer_params();
        header << "fc " << l.get_num_outputs() << " " << (B == FC_HAS_BIAS && !l.bias_is_disabled()) << " " << params.size();
        records->push_back({header.str(), copy_values(params)});
    }

    template <typename other>
    void operator()(const other&) const {}  // relu, pooling, add, tags: no values
};

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s dlib_face_recognition_resnet_model_v1.dat > layers.bin\n", argv[0]);
        return 2;
    }
    anet_type net;
    deserialize(argv[1]) >> net;
    std::vector<record> records;
    visit_computational_layers(net, dumper{&records});  // visits from the output to the input
    for (auto it = records.rbegin(); it != records.rend(); ++it) {
        std::fprintf(stdout, "%s\n", it->header.c_str());
        std::fwrite(it->values.data(), sizeof(float), it->values.size(), stdout);
    }
    return 0;
}
